import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import JSON
import JWTAuth
import NIOCore
import NIOHTTP1
import Testing

@testable import McpGateway

/// Reads server-sent events from a streaming response, one event at a time.
final class SSEReader: @unchecked Sendable {
    private var iterator: HTTPClientResponse.Body.AsyncIterator
    private var buffer = ""

    init(_ response: HTTPClientResponse) {
        self.iterator = response.body.makeAsyncIterator()
    }

    /// The next event's name and data; comments (keep-alives) are skipped.
    func next() async throws -> (event: String, data: String)? {
        while true {
            if let end = buffer.range(of: "\n\n") {
                let block = String(buffer[..<end.lowerBound])
                buffer.removeSubrange(..<end.upperBound)
                var event = "message"
                var data: [String] = []
                for line in block.split(separator: "\n") {
                    if line.hasPrefix("event: ") { event = String(line.dropFirst(7)) }
                    if line.hasPrefix("data: ") { data.append(String(line.dropFirst(6))) }
                }
                if data.isEmpty { continue }
                return (event, data.joined(separator: "\n"))
            }
            guard let chunk = try await iterator.next() else { return nil }
            buffer += String(buffer: chunk)
        }
    }

    /// The next `message` event, as a JSON object.
    func nextMessage() async throws -> [String: JSONValue] {
        let event = try #require(try await next())
        #expect(event.event == "message")
        return try #require(try JSONValue(parsing: Data(event.data.utf8)).objectValue)
    }
}

@Suite("Gateway legacy HTTP+SSE transport")
struct LegacySSETests {
    typealias App = GatewayTestApp
    static let initialize =
        #"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2024-11-05","capabilities":{},"clientInfo":{"name":"legacy","version":"1"}}}"#

    /// Opens `GET /sse` on the live server; returns the reader and the endpoint it announced.
    static func open(port: Int, token: String) async throws -> (SSEReader, String) {
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/sse")
        request.headers.add(name: "Authorization", value: "Bearer \(token)")
        request.headers.add(name: "Accept", value: "text/event-stream")
        let response = try await App.httpClient.execute(request, timeout: .seconds(10))
        #expect(response.status == .ok)
        #expect(response.headers.first(name: "Content-Type") == "text/event-stream")
        let reader = SSEReader(response)
        let endpoint = try #require(try await reader.next())
        #expect(endpoint.event == "endpoint")
        return (reader, endpoint.data)
    }

    @Test func unauthenticatedRequestsArePointedAtTheSSEResourceMetadata() async throws {
        let app = try await App()
        try await app.run { client in
            for (path, method) in [("/sse", HTTPRequest.Method.get), ("/messages?sessionId=x", .post)] {
                let response = try await client.execute(uri: path, method: method)
                #expect(response.status == .unauthorized)
                #expect(
                    response.headers[.wwwAuthenticate]?.hasSuffix(
                        #"resource_metadata="http://localhost:8788/.well-known/oauth-protected-resource/sse""#) == true)
            }
            let metadata = try jsonObject(
                try await client.execute(uri: "/.well-known/oauth-protected-resource/sse", method: .get))
            #expect(metadata["resource"] == "http://localhost:8788/sse")
            #expect(metadata["authorization_servers"] == ["http://localhost:8788"])
        }
    }

    @Test func aTokenRequestedForTheSSEURLIsAccepted() async throws {
        let app = try await App()
        try await app.run { client in
            let tokens = try await client.signIn(app: app)
            let refreshed = try await client.postForm(
                "/token",
                [
                    ("grant_type", "refresh_token"), ("refresh_token", try #require(tokens.refreshToken)),
                    ("client_id", tokens.clientID), ("resource", "http://localhost:8788/sse"),
                ])
            #expect(refreshed.status == .ok)
            let other = try await client.postForm(
                "/token",
                [
                    ("grant_type", "refresh_token"), ("refresh_token", try #require(tokens.refreshToken)),
                    ("client_id", tokens.clientID), ("resource", "http://localhost:8788/other"),
                ])
            try expectOAuthError(other, .badRequest, "invalid_target")
        }
    }

    @Test(arguments: [
        ("text/event-stream", true), ("*/*", true), ("text/*", true), ("application/json, text/event-stream", true),
        ("text/event-stream; q=0.5", true), ("application/json", false), ("text/event-stream;q=0", false),
        ("text/event-stream; q=0.0, application/json", false), ("text/html", false),
    ])
    func theStreamNeedsAnAcceptHeaderThatAllowsEvents(_ accept: String, _ allowed: Bool) {
        #expect(AcceptHeader.allows(accept, "text/event-stream") == allowed)
    }

    @Test func messagesNeedTheirSessionAndJSON() async throws {
        let app = try await App()
        try await app.run { client in
            let tokens = try await client.signIn(app: app)
            let missing = try await client.postJSON("/messages", "{}", headers: bearer(tokens.accessToken))
            #expect(missing.status == .badRequest)
            let unknown = try await client.postJSON(
                "/messages?sessionId=nope", Self.initialize, headers: bearer(tokens.accessToken))
            #expect(unknown.status == .notFound)
            // A Streamable HTTP session is not a legacy one.
            let streamable = try await client.initialize(tokens.accessToken)
            let crossed = try await client.postJSON(
                "/messages?sessionId=\(streamable)", Self.initialize, headers: bearer(tokens.accessToken))
            #expect(crossed.status == .notFound)
            let wrongMethod = try await client.execute(
                uri: "/sse", method: .post, headers: bearer(tokens.accessToken))
            #expect(wrongMethod.status == .methodNotAllowed)
            let notAcceptable = try await client.execute(
                uri: "/sse", method: .get, headers: bearer(tokens.accessToken) + [.accept: "application/json"])
            #expect(notAcceptable.status == .notAcceptable)
        }
    }

    @Test func aSessionOverSSE() async throws {
        let app = try await App()
        try await app.run(mode: .live) { client in
            let port = try #require(client.port)
            let alice = try await client.signIn(app: app)
            let (events, endpoint) = try await Self.open(port: port, token: alice.accessToken)
            #expect(endpoint.hasPrefix("/messages?sessionId="))
            let sessionID = String(endpoint.dropFirst("/messages?sessionId=".count))
            #expect(sessionID.count >= 43)

            let accepted = try await client.postJSON(endpoint, Self.initialize, headers: bearer(alice.accessToken))
            #expect(accepted.status == .accepted)
            let initialized = try await events.nextMessage()
            #expect(initialized["id"] == 1)
            #expect(initialized["result"]?.objectValue?["protocolVersion"] == "2024-11-05")
            _ = try await client.postJSON(
                endpoint, #"{"jsonrpc":"2.0","method":"notifications/initialized"}"#, headers: bearer(alice.accessToken)
            )

            _ = try await client.postJSON(
                endpoint, #"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#, headers: bearer(alice.accessToken))
            let list = try await events.nextMessage()
            #expect(list["id"] == 2)
            #expect(list["result"]?.objectValue?["tools"]?.arrayValue?.count == 6)

            _ = try await client.postJSON(
                endpoint,
                #"{"jsonrpc":"2.0","id":"w","method":"tools/call","params":{"name":"whoami","arguments":{}}}"#,
                headers: bearer(alice.accessToken))
            let whoami = try await events.nextMessage()
            #expect(whoami["id"] == "w")
            let text = whoami["result"]?.objectValue?["content"]?.arrayValue?.first?.objectValue?["text"]?.stringValue
            #expect(text?.contains("auth0|alice") == true)

            // A tool the token has no scope for is a tool error on the stream, not a 403 on the POST.
            let post = try await client.postJSON(
                endpoint,
                #"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"list-billing","arguments":{}}}"#,
                headers: bearer(alice.accessToken))
            #expect(post.status == .accepted)
            let refused = try await events.nextMessage()
            #expect(refused["result"]?.objectValue?["isError"] == true)

            // Another user cannot post to Alice's session.
            let bob = try await client.signIn(app: app, subject: "auth0|bob")
            let intruder = try await client.postJSON(
                endpoint, #"{"jsonrpc":"2.0","id":4,"method":"ping"}"#, headers: bearer(bob.accessToken))
            #expect(intruder.status == .notFound)

            let notJSON = try await client.execute(
                uri: endpoint, method: .post, headers: bearer(alice.accessToken) + [.contentType: "text/plain"],
                body: ByteBuffer(string: "{}"))
            #expect(notJSON.status == .unsupportedMediaType)
            let garbage = try await client.postJSON(endpoint, "{not json", headers: bearer(alice.accessToken))
            #expect(garbage.status == .badRequest)
        }
    }

    @Test func closingTheSessionEndsTheStream() async throws {
        let app = try await App()
        try await app.run(mode: .live) { client in
            let port = try #require(client.port)
            let tokens = try await client.signIn(app: app)
            let (events, endpoint) = try await Self.open(port: port, token: tokens.accessToken)
            // As the idle sweeper or a shutdown does.
            app.sessions?.close(String(endpoint.dropFirst("/messages?sessionId=".count)), reason: "test")
            #expect(try await events.next() == nil)
            let after = try await client.postJSON(endpoint, Self.initialize, headers: bearer(tokens.accessToken))
            #expect(after.status == .notFound)
        }
    }
}

extension HTTPFields {
    static func + (lhs: HTTPFields, rhs: HTTPFields) -> HTTPFields {
        var fields = lhs
        fields.append(contentsOf: rhs)
        return fields
    }
}
