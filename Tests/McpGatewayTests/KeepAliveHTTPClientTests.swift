import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import NIOHTTP1
import Testing

@testable import McpGateway

/// The gateway's client for TodosAPI: connections kept and reused, bounded responses, timeouts, the pool's limit, and
/// servers that close connections.
@Suite("Keep-alive HTTP client")
struct KeepAliveHTTPClientTests {
    /// Runs a test server (with `idleTimeout`, when given) and gives `body` a client for it.
    func withServer(
        idleTimeout: TimeAmount? = nil, maximumConnections: Int = 4,
        _ body: @escaping @Sendable (KeepAliveHTTPClient) async throws -> Void
    ) async throws {
        let router = Router(context: GatewayRequestContext.self)
        router.get("port") { _, context -> String in "\(context.channel.remoteAddress?.port ?? 0)" }
        router.post("echo") { request, _ -> Response in
            let body = try await request.body.collect(upTo: 1 << 20)
            return Response(status: .created, headers: [.contentType: "text/plain"], body: .init(byteBuffer: body))
        }
        router.get("big") { _, _ -> Response in
            Response(status: .ok, body: .init(byteBuffer: ByteBuffer(repeating: 0x61, count: 2 << 20)))
        }
        router.get("slow") { _, _ -> String in
            try await Task.sleep(for: .seconds(2))
            return "late"
        }
        router.get("close") { _, _ -> Response in
            Response(status: .ok, headers: [.connection: "close"], body: .init(byteBuffer: ByteBuffer(string: "bye")))
        }
        let app = Application(
            router: router, server: .http1(configuration: .init(idleTimeout: idleTimeout)),
            configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        try await app.test(.live) { client in
            let port = try #require(client.port)
            let origin = try #require(KeepAliveHTTPClient.Origin("http://127.0.0.1:\(port)/"))
            let http = try KeepAliveHTTPClient(
                origin: origin,
                configuration: .init(connectTimeout: .seconds(1), maximumConnections: maximumConnections))
            defer { http.shutdown() }
            try await body(http)
        }
    }

    func text(_ response: KeepAliveHTTPClient.Response) -> String { String(buffer: response.body) }

    @Test func connectionsAreKeptAndReused() async throws {
        try await withServer { http in
            let first = try await http.execute(.init(method: .GET, path: "/port"), timeout: .seconds(5))
            #expect(first.status == .ok)
            for _ in 0..<5 {
                let again = try await http.execute(.init(method: .GET, path: "/port"), timeout: .seconds(5))
                #expect(text(again) == text(first))
            }
            let echoed = try await http.execute(
                .init(method: .POST, path: "/echo", body: ByteBuffer(string: #"{"a":1}"#)), timeout: .seconds(5))
            #expect(echoed.status == .created)
            #expect(text(echoed) == #"{"a":1}"#)
        }
    }

    @Test func aServerThatClosesIsNotReusedAndANewConnectionIsOpened() async throws {
        try await withServer(idleTimeout: .seconds(1)) { http in
            let closing = try await http.execute(.init(method: .GET, path: "/close"), timeout: .seconds(5))
            #expect(text(closing) == "bye")
            let before = text(try await http.execute(.init(method: .GET, path: "/port"), timeout: .seconds(5)))
            // The server closes idle connections after a second: the next request still succeeds, on a new connection.
            try await Task.sleep(for: .milliseconds(1500))
            let after = text(try await http.execute(.init(method: .GET, path: "/port"), timeout: .seconds(5)))
            #expect(after != before)
        }
    }

    @Test func responsesAreBoundedAndTimed() async throws {
        try await withServer { http in
            await #expect(throws: KeepAliveHTTPClient.Failure.self) {
                try await http.execute(.init(method: .GET, path: "/big"), timeout: .seconds(5))
            }
            let started = ContinuousClock.now
            await #expect(throws: KeepAliveHTTPClient.Failure.self) {
                try await http.execute(.init(method: .GET, path: "/slow"), timeout: .milliseconds(200))
            }
            #expect(ContinuousClock.now - started < .seconds(2))
            // The pool is still usable after both failures.
            let after = try await http.execute(.init(method: .GET, path: "/port"), timeout: .seconds(5))
            #expect(after.status == .ok)
        }
    }

    @Test func requestsBeyondThePoolWaitForAConnection() async throws {
        try await withServer(maximumConnections: 2) { http in
            let ports = try await withThrowingTaskGroup(of: String.self) { group in
                for _ in 0..<20 {
                    group.addTask {
                        self.text(try await http.execute(.init(method: .GET, path: "/port"), timeout: .seconds(5)))
                    }
                }
                var ports = Set<String>()
                for try await port in group { ports.insert(port) }
                return ports
            }
            #expect(ports.count <= 2)
        }
    }

    @Test func anUnreachableServiceFailsFast() async throws {
        let origin = try #require(KeepAliveHTTPClient.Origin("http://127.0.0.1:9"))
        let http = try KeepAliveHTTPClient(origin: origin, configuration: .init(connectTimeout: .seconds(1)))
        defer { http.shutdown() }
        await #expect(throws: KeepAliveHTTPClient.Failure.self) {
            try await http.execute(.init(method: .GET, path: "/"), timeout: .seconds(5))
        }
        // Its place in the pool was given back: more attempts fail the same way instead of waiting forever.
        for _ in 0..<70 {
            await #expect(throws: KeepAliveHTTPClient.Failure.self) {
                try await http.execute(.init(method: .GET, path: "/"), timeout: .seconds(5))
            }
        }
    }

    @Test(arguments: [
        ("http://api.example.com", "api.example.com", 80, "", false),
        ("https://api.example.com/", "api.example.com", 443, "", true),
        ("http://localhost:8789/base/", "localhost:8789", 8789, "/base", false),
    ])
    func originsAreParsed(url: String, host: String, port: Int, base: String, secure: Bool) throws {
        let origin = try #require(KeepAliveHTTPClient.Origin(url))
        #expect(origin.hostHeader == host)
        #expect(origin.port == port)
        #expect(origin.basePath == base)
        #expect(origin.secure == secure)
        #expect(KeepAliveHTTPClient.Origin("ftp://x") == nil)
        #expect(KeepAliveHTTPClient.Origin("http://x?q=1") == nil)
    }
}
