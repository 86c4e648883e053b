import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Resilience

/// A JSON document fetched over HTTP, with how long it may be cached.
public struct FetchedDocument: Sendable {
    /// The response body.
    public var body: [UInt8]
    /// `Cache-Control: max-age`, when the response had one; 0 for `no-store` and `no-cache`.
    public var maxAge: TimeInterval?

    /// Creates a document.
    public init(body: [UInt8], maxAge: TimeInterval? = nil) {
        self.body = body
        self.maxAge = maxAge
    }
}

/// Fetches key sets and discovery documents. Injected so that tests can count and fail fetches.
public protocol DocumentFetching: Sendable {
    /// GETs `url`; throws unless the answer is a 200 within the size and time limits.
    func fetch(_ url: String) async throws -> FetchedDocument
}

/// Why a document could not be fetched.
public struct DocumentFetchError: Error, CustomStringConvertible, Sendable {
    /// What went wrong, for logs.
    public let description: String
    /// Creates an error.
    public init(_ description: String) { self.description = description }
}

/// Fetches documents with async-http-client: a deadline on the whole answer, body included, a size limit, JSON
/// accepted, no redirect followed.
public struct HTTPDocumentFetcher: DocumentFetching {
    private let client: HTTPClient
    private let timeout: TimeAmount
    private let maximumSize: Int

    /// The process-wide client of fetchers created without one. It follows no redirect: keys and discovery documents
    /// come from the URL configured or published, and a redirect (https to http, or to another host) could substitute
    /// another issuer's keys. A 3xx is an error like any other status but 200.
    public static let sharedClient: HTTPClient = {
        var configuration = HTTPClient.Configuration()
        configuration.redirectConfiguration = .disallow
        // A refused connection is tried again within the fetch's deadline: an issuer that starts a moment after the
        // service (the gateway after TodosAPI, in a compose file) is fetched on the first request. Key sets are cached
        // and served stale while their issuer is down, so a retry waiting out a back-off costs no request.
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }()

    /// Creates a fetcher on `client` (by default ``sharedClient``, which follows no redirect). `timeout` bounds each
    /// fetch from the request to the last byte of the body: a server that sends its headers and then trickles (or
    /// stops) is cut off, and the request cancelled.
    public init(client: HTTPClient = sharedClient, timeout: TimeAmount = .seconds(5), maximumSize: Int = 512 * 1024) {
        self.client = client
        self.timeout = timeout
        self.maximumSize = maximumSize
    }

    public func fetch(_ url: String) async throws -> FetchedDocument {
        let (client, timeout, maximumSize) = (client, timeout, maximumSize)
        return try await Deadline.run(within: .nanoseconds(timeout.nanoseconds), operation: "GET \(url)") {
            try await Self.fetch(url, client: client, timeout: timeout, maximumSize: maximumSize)
        }
    }

    private static func fetch(_ url: String, client: HTTPClient, timeout: TimeAmount, maximumSize: Int) async throws
        -> FetchedDocument
    {
        var request = HTTPClientRequest(url: url)
        request.headers.add(name: "Accept", value: "application/json")
        let response = try await client.execute(request, timeout: timeout)
        guard response.status == .ok else {
            throw DocumentFetchError("GET \(url) answered \(response.status.code)")
        }
        let body = try await response.body.collect(upTo: maximumSize)
        let maxAge = CacheControl.maxAge(response.headers[canonicalForm: "Cache-Control"].map(String.init))
        return FetchedDocument(body: Array(buffer: body), maxAge: maxAge)
    }
}

/// Reads the freshness lifetime from `Cache-Control` values (RFC 9111 §5.2.2).
public enum CacheControl {
    /// `max-age` in seconds; 0 when `no-store` or `no-cache` is present; `nil` when neither is said.
    public static func maxAge(_ values: [String]) -> TimeInterval? {
        var maxAge: TimeInterval?
        for directive in values.flatMap({ $0.split(separator: ",") }) {
            let parts = directive.split(separator: "=", maxSplits: 1).map {
                $0.trimmingCharacters(in: .whitespaces).lowercased()
            }
            switch parts.first {
            case "no-store", "no-cache": return 0
            case "max-age":
                if parts.count == 2,
                    let seconds = Int(parts[1].trimmingCharacters(in: CharacterSet(charactersIn: "\""))),
                    seconds >= 0
                {
                    maxAge = TimeInterval(seconds)
                }
            default: continue
            }
        }
        return maxAge
    }
}
