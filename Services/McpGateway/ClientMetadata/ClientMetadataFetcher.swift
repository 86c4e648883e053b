import AsyncHTTPClient
import Foundation
import JWTAuth
import NIOCore
import NIOHTTP1
import Resilience
import ServiceSupport

/// A metadata document as fetched: its bytes, and how long it may be reused.
struct FetchedClientMetadata: Sendable {
    var body: [UInt8]
    var lifetime: TimeInterval
}

/// Fetches a Client ID Metadata Document. Injected so that the cache can be tested without a network.
protocol ClientMetadataFetching: Sendable {
    func fetch(_ url: ClientMetadataDocumentURL) async throws(ClientMetadataDocumentError) -> FetchedClientMetadata
}

/// Fetches metadata documents over HTTPS, as carefully as a URL chosen by a stranger requires.
///
/// - The host is resolved first and every address must be public (``PublicAddressPolicy``); the connection then goes
///   to the address that was checked (the HTTP client's DNS override), so a name cannot resolve to a public address
///   for the check and to `127.0.0.1` for the connection (DNS rebinding).
/// - Redirects are not followed: a redirect could lead anywhere, and the document must live at its own URL anyway.
/// - 3 s to connect, 5 s for everything (``timeout``); at most ``maximumSize`` bytes; status 200 and a JSON media type only.
/// - No cookies, no credentials, no proxy from the environment.
struct HTTPClientMetadataFetcher: ClientMetadataFetching {
    let policy: PublicAddressPolicy
    let resolver: any HostResolving
    /// For everything: resolving, connecting, the response and its body.
    var timeout: Duration = .seconds(5)

    static let maximumSize = 5 * 1024
    /// Reuse when the response says nothing about caching.
    static let defaultLifetime: TimeInterval = 300
    /// Reuse at most this long, whatever the response says: a client that changes its redirect URIs is seen within a
    /// day.
    static let maximumLifetime: TimeInterval = 86_400

    func fetch(_ url: ClientMetadataDocumentURL) async throws(ClientMetadataDocumentError) -> FetchedClientMetadata {
        try await withDeadline { () async throws(ClientMetadataDocumentError) in try await resolveAndDownload(url) }
    }

    private func resolveAndDownload(_ url: ClientMetadataDocumentURL) async throws(ClientMetadataDocumentError)
        -> FetchedClientMetadata
    {
        let address = try await checkedAddress(of: url)
        var configuration = HTTPClient.Configuration()
        configuration.redirectConfiguration = .disallow
        configuration.connectionPool.retryConnectionEstablishment = false
        configuration.timeout = .init(connect: .seconds(3), read: .milliseconds(timeoutMilliseconds))
        configuration.decompression = .disabled
        configuration.httpVersion = .http1Only
        if PublicAddressPolicy.parse(url.host) == nil {
            configuration.dnsOverride = [url.host: address]
        }
        // A client per fetch: its connection goes to the address checked above and to nothing else. Fetches are rare
        // (documents are cached), so the pool this costs does not matter.
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        let result = await capture { () async throws(ClientMetadataDocumentError) in
            try await download(url, with: client)
        }
        try? await client.shutdown()
        return try result.get()
    }

    /// The address to connect to: the literal in the URL, or the first address the name resolves to, after checking
    /// that every address the name has is allowed (a name with one private address among public ones is refused).
    private func checkedAddress(of url: ClientMetadataDocumentURL) async throws(ClientMetadataDocumentError) -> String {
        let refused = ClientMetadataDocumentError.unavailable(
            "\(url.host) is a private, loopback or reserved address; metadata documents must be on the public internet."
        )
        if let literal = PublicAddressPolicy.parse(url.host) {
            guard policy.allows(literal) else { throw refused }
            return url.host
        }
        let addresses: [[UInt8]]
        do { addresses = try await resolver.addresses(of: url.host, port: url.port) } catch {
            throw .unavailable("The host name \(url.host) could not be resolved.")
        }
        guard let first = addresses.first else {
            throw .unavailable("The host name \(url.host) has no address.")
        }
        guard addresses.allSatisfy(policy.allows) else { throw refused }
        return PublicAddressPolicy.format(first)
    }

    private func download(_ url: ClientMetadataDocumentURL, with client: HTTPClient)
        async throws(ClientMetadataDocumentError) -> FetchedClientMetadata
    {
        var request = HTTPClientRequest(url: url.fetchURL)
        request.headers.add(name: "Accept", value: "application/json")
        request.headers.add(name: "User-Agent", value: "mcp-gateway (client metadata)")
        let response: HTTPClientResponse
        do { response = try await client.execute(request, timeout: .milliseconds(timeoutMilliseconds)) } catch {
            throw .unavailable("The metadata document at \(url.text) could not be fetched: \(Self.describe(error)).")
        }
        guard response.status == .ok else {
            let hint = (300..<400).contains(Int(response.status.code)) ? " (redirects are not followed)" : ""
            throw .unavailable("Fetching \(url.text) returned HTTP \(response.status.code)\(hint); 200 is required.")
        }
        guard Self.isJSON(response.headers.first(name: "Content-Type")) else {
            throw .invalidDocument("The metadata document must be served as application/json.")
        }
        if let length = response.headers.first(name: "Content-Length").flatMap(Int.init), length > Self.maximumSize {
            throw .invalidDocument("The metadata document is larger than \(Self.maximumSize) bytes.")
        }
        let body: ByteBuffer
        do { body = try await response.body.collect(upTo: Self.maximumSize) } catch is NIOTooManyBytesError {
            throw .invalidDocument("The metadata document is larger than \(Self.maximumSize) bytes.")
        } catch {
            throw .unavailable("The metadata document at \(url.text) could not be read: \(Self.describe(error)).")
        }
        return FetchedClientMetadata(
            body: Array(body.readableBytesView),
            lifetime: Self.lifetime(cacheControl: response.headers[canonicalForm: "Cache-Control"].map(String.init)))
    }

    /// The whole fetch, name resolution and body included, within ``timeout``: the HTTP client's own deadline stops
    /// at the response head, so a server trickling its body one byte at a time is cut off here, and so is a resolver
    /// that never answers (``Deadline`` does not wait for the work to notice).
    private func withDeadline(
        _ operation: @escaping @Sendable () async throws(ClientMetadataDocumentError) -> FetchedClientMetadata
    ) async throws(ClientMetadataDocumentError) -> FetchedClientMetadata {
        let outcome: Result<FetchedClientMetadata, ClientMetadataDocumentError>
        do {
            outcome = try await Deadline.run(within: timeout, operation: "fetching a client metadata document") {
                await capture(operation)
            }
        } catch {
            GatewayMetrics.dependencyFailure(.clientMetadata, timedOut: true)
            throw .unavailable("The metadata document was not received within \(timeoutMilliseconds) ms.")
        }
        return try outcome.get()
    }

    /// How long a response may be reused: `no-store` and `no-cache` mean not at all, `max-age` says how long (at most
    /// ``maximumLifetime``), and no directive means ``defaultLifetime``.
    static func lifetime(cacheControl: [String]) -> TimeInterval {
        min(CacheControl.maxAge(cacheControl) ?? defaultLifetime, maximumLifetime)
    }

    /// ``timeout`` in whole milliseconds, the unit of NIO's `TimeAmount` here and of the error message.
    private var timeoutMilliseconds: Int64 {
        timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000
    }

    static func isJSON(_ contentType: String?) -> Bool {
        guard let contentType else { return false }
        let mediaType = MediaType.essence(contentType)
        return mediaType == "application/json" || (mediaType.hasPrefix("application/") && mediaType.hasSuffix("+json"))
    }

    private static func describe(_ error: any Error) -> String {
        if let error = error as? HTTPClientError {
            switch error {
            case .deadlineExceeded, .readTimeout: return "timed out"
            case .connectTimeout: return "the connection timed out"
            default: break
            }
        }
        let text = String(describing: error)
        if text.localizedCaseInsensitiveContains("refused") { return "connection refused" }
        if text.localizedCaseInsensitiveContains("certificate") || text.contains("handshake") {
            return "its TLS certificate was not accepted"
        }
        return "the connection failed"
    }
}

/// The outcome of `body` as a value, to carry a typed error across a task boundary.
private func capture<Success>(
    _ body: () async throws(ClientMetadataDocumentError) -> Success
) async -> Result<Success, ClientMetadataDocumentError> {
    do { return .success(try await body()) } catch { return .failure(error) }
}
