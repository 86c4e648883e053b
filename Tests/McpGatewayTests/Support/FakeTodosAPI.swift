import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing

/// A stand-in for TodosAPI that records the credentials the gateway's tools present, for tests of what reaches the
/// API in each mode. It answers `GET /api/todos` with an empty list.
final class FakeTodosAPI: @unchecked Sendable {
    struct Seen: Sendable {
        let authorization: String?
        let accessToken: String?
    }

    private let lock = NSLock()
    private var requests: [Seen] = []

    var seen: [Seen] { lock.withLock { requests } }

    /// Runs the fake API on a free loopback port; `body` gets its base URL.
    func run(_ body: @escaping @Sendable (String) async throws -> Void) async throws {
        let router = Router()
        router.get("api/todos") { request, _ -> Response in
            self.lock.withLock {
                self.requests.append(
                    Seen(
                        authorization: request.headers[.authorization],
                        accessToken: request.headers[HTTPField.Name("Cf-Access-Token")!]))
            }
            return Response(
                status: .ok, headers: [.contentType: "application/json"],
                body: .init(byteBuffer: ByteBuffer(string: #"{"todos":[]}"#)))
        }
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        try await app.test(.live) { client in
            try await body("http://127.0.0.1:\(try #require(client.port))")
        }
    }
}
