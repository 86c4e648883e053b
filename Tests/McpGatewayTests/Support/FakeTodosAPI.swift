import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing

/// A stand-in for TodosAPI that records what the gateway's tools send (credentials, trace context), for tests of what
/// reaches the API. It answers `GET /api/todos` with an empty list; with `holding`, every request waits until
/// ``release()``, so that tests can keep tool calls in flight.
final class FakeTodosAPI: @unchecked Sendable {
    struct Seen: Sendable {
        let authorization: String?
        let accessToken: String?
        let traceparent: String?
        let tracestate: String?
    }

    private let lock = NSLock()
    private var requests: [Seen] = []
    private var holding: Bool
    private var held: [CheckedContinuation<Void, Never>] = []

    init(holding: Bool = false) { self.holding = holding }

    var seen: [Seen] { lock.withLock { requests } }
    /// How many requests are waiting for ``release()``.
    var waiting: Int { lock.withLock { held.count } }

    /// Lets every held request through, and the ones to come.
    func release() {
        let waiting = lock.withLock {
            holding = false
            defer { held = [] }
            return held
        }
        for continuation in waiting { continuation.resume() }
    }

    /// Waits (up to ten seconds) until `count` requests are held.
    func waitUntilHolding(_ count: Int) async throws {
        for _ in 0..<1000 where waiting < count { try await Task.sleep(for: .milliseconds(10)) }
        #expect(waiting == count)
    }

    /// Runs the fake API on a free loopback port; `body` gets its base URL.
    func run(_ body: @escaping @Sendable (String) async throws -> Void) async throws {
        let router = Router()
        router.get("api/todos") { request, _ -> Response in
            self.lock.withLock {
                self.requests.append(
                    Seen(
                        authorization: request.headers[.authorization],
                        accessToken: request.headers[HTTPField.Name("Cf-Access-Token")!],
                        traceparent: request.headers[HTTPField.Name("traceparent")!],
                        tracestate: request.headers[HTTPField.Name("tracestate")!]))
            }
            await withCheckedContinuation { continuation in
                let hold = self.lock.withLock {
                    if self.holding { self.held.append(continuation) }
                    return self.holding
                }
                if !hold { continuation.resume() }
            }
            return Response(
                status: .ok, headers: [.contentType: "application/json"],
                body: .init(byteBuffer: ByteBuffer(string: #"{"todos":[]}"#)))
        }
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        try await app.test(.live) { client in
            defer { self.release() }
            try await body("http://127.0.0.1:\(try #require(client.port))")
        }
    }
}
