import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing

/// Serves Client ID Metadata Documents on a free loopback port, and counts how often each was fetched.
final class MetadataDocumentServer: @unchecked Sendable {
    struct Document: Sendable {
        var status: HTTPResponse.Status = .ok
        var headers: HTTPFields = [.contentType: "application/json"]
        /// How long to wait before answering.
        var delay: Duration = .zero
        /// The body, given the document's own URL.
        var body: @Sendable (String) -> String
    }

    private let lock = NSLock()
    private var documents: [String: Document]
    private var hits: [String: Int] = [:]

    init(_ documents: [String: Document]) {
        self.documents = documents
    }

    func fetches(_ path: String) -> Int { lock.withLock { hits[path, default: 0] } }

    func replace(_ path: String, with document: Document) { lock.withLock { documents[path] = document } }

    /// A valid document for a client redirecting to `redirectURIs`, with `extra` members added or replaced.
    static func document(
        redirectURIs: [String] = [GatewayTestApp.redirectURI], name: String = "Metadata Client",
        extra: String = "", cacheControl: String? = nil
    ) -> Document {
        var headers: HTTPFields = [.contentType: "application/json"]
        if let cacheControl { headers[.cacheControl] = cacheControl }
        let uris = redirectURIs.map { "\"\($0)\"" }.joined(separator: ",")
        return Document(headers: headers) { url in
            #"{"client_id":"\#(url)","client_name":"\#(name)","redirect_uris":[\#(uris)]\#(extra)}"#
        }
    }

    /// Runs the server; `body` gets its base URL (`http://127.0.0.1:PORT`).
    func run(_ body: @escaping @Sendable (String) async throws -> Void) async throws {
        let router = Router()
        router.get("**") { request, _ -> Response in
            let path = request.uri.path
            let document = self.lock.withLock { () -> Document? in
                self.hits[path, default: 0] += 1
                return self.documents[path]
            }
            guard let document else { return Response(status: .notFound) }
            if document.delay > .zero { try await Task.sleep(for: document.delay) }
            let url = "http://\(request.head.authority ?? "127.0.0.1")\(path)"
            return Response(
                status: document.status, headers: document.headers,
                body: .init(byteBuffer: ByteBuffer(string: document.body(url))))
        }
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        try await app.test(.live) { client in
            try await body("http://127.0.0.1:\(try #require(client.port))")
        }
    }
}
