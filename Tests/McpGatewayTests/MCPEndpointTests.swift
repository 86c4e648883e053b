import Foundation
import HTTPTypes
import HummingbirdTesting
import JSON
import JWTAuth
import NIOCore
import ServiceSupport
import Testing

@testable import McpGateway

/// A JSON-RPC exchange with /mcp: the HTTP answer and the messages of its JSON or SSE body.
struct MCPReply {
    let response: TestResponse
    var status: HTTPResponse.Status { response.status }
    var messages: [[String: JSONValue]] {
        let text = String(buffer: response.body)
        let payloads =
            response.headers[.contentType]?.hasPrefix("text/event-stream") == true
            ? text.split(separator: "\n").filter { $0.hasPrefix("data: ") }.map { String($0.dropFirst(6)) } : [text]
        return payloads.compactMap { try? JSONDecoder().decode([String: JSONValue].self, from: Data($0.utf8)) }
    }
    var result: [String: JSONValue]? { messages.first?["result"]?.objectValue }
}

extension TestClientProtocol {
    func mcp(
        _ token: String?, session: String? = nil, _ body: String, method: HTTPRequest.Method = .post,
        extra: HTTPFields = [:]
    ) async throws -> MCPReply {
        var headers: HTTPFields = [.contentType: "application/json", .accept: "application/json, text/event-stream"]
        if let token { headers[.authorization] = "Bearer \(token)" }
        if let session { headers[HTTPField.Name("Mcp-Session-Id")!] = session }
        // Headers in `extra` replace the defaults of the same name (and may repeat, to test duplicates).
        for name in Set(extra.map(\.name)) { headers[name] = nil }
        headers.append(contentsOf: extra)
        return MCPReply(
            response: try await execute(uri: "/mcp", method: method, headers: headers, body: ByteBuffer(string: body)))
    }

    /// Opens a session; returns its id.
    func initialize(_ token: String) async throws -> String {
        let reply = try await mcp(
            token,
            #"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"test","version":"1"}}}"#
        )
        #expect(reply.status == .ok)
        let session = try #require(reply.response.headers[HTTPField.Name("Mcp-Session-Id")!])
        _ = try await mcp(token, session: session, #"{"jsonrpc":"2.0","method":"notifications/initialized"}"#)
        return session
    }

    func callTool(_ token: String, session: String, _ name: String, _ arguments: String = "{}") async throws -> MCPReply
    {
        try await mcp(
            token, session: session,
            #"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"\#(name)","arguments":\#(arguments)}}"#)
    }
}

@Suite("Gateway /mcp")
struct MCPEndpointTests {
    typealias App = GatewayTestApp
    let metadata = #"resource_metadata="http://localhost:8788/.well-known/oauth-protected-resource/mcp""#

    @Test func withoutATokenTheChallengePointsAtTheResourceMetadata() async throws {
        let app = try await App()
        try await app.run { client in
            let reply = try await client.mcp(nil, "{}")
            #expect(reply.status == .unauthorized)
            #expect(
                reply.response.headers[.wwwAuthenticate]
                    == #"Bearer scope="offline_access read:billing read:todos write:todos", \#(metadata)"#)
        }
    }

    @Test(arguments: ["mcpgw_at_forged", "eyJhbGciOiJSUzI1NiJ9.e30.sig", "upstream-token"])
    func invalidTokensAre401InvalidToken(token: String) async throws {
        let app = try await App()
        try await app.run { client in
            let reply = try await client.mcp(token, "{}")
            #expect(reply.status == .unauthorized)
            let challenge = try #require(reply.response.headers[.wwwAuthenticate])
            #expect(challenge.hasPrefix(#"Bearer error="invalid_token", error_description=""#))
            #expect(challenge.hasSuffix(metadata))
        }
    }

    @Test func tokensInTheQueryStringAreRefused() async throws {
        let app = try await App()
        try await app.run { client in
            let tokens = try await client.signIn(app: app)
            let response = try await client.execute(
                uri: "/mcp?access_token=\(tokens.accessToken)", method: .post,
                headers: [.contentType: "application/json"], body: ByteBuffer(string: "{}"))
            #expect(response.status == .badRequest)
            #expect(response.headers[.wwwAuthenticate]?.contains(#"error="invalid_request""#) == true)
        }
    }

    @Test func foreignOriginsAreRefused() async throws {
        let app = try await App()
        try await app.run { client in
            let tokens = try await client.signIn(app: app)
            let evil = try await client.mcp(tokens.accessToken, "{}", extra: [.origin: "https://evil.example"])
            #expect(evil.status == .forbidden)
            let local = try await client.mcp(
                tokens.accessToken, #"{"jsonrpc":"2.0","id":1,"method":"ping"}"#,
                extra: [.origin: "http://localhost:6274"])
            #expect(local.status != .forbidden)
            let own = try await client.mcp(
                tokens.accessToken, #"{"jsonrpc":"2.0","id":1,"method":"ping"}"#,
                extra: [.origin: "http://localhost:8788"])
            #expect(own.status != .forbidden)
        }
    }

    @Test func inProductionOnlyConfiguredOriginsAreAllowed() async throws {
        let app = try await App(environment: [
            "PUBLIC_URL": "https://mcp.example.com", "ALLOWED_ORIGINS": "https://app.example.com",
        ])
        try await app.run { client in
            let anonymous = try await client.mcp(nil, "{}", extra: [.origin: "http://localhost:6274"])
            #expect(anonymous.status == .forbidden)
            let allowed = try await client.mcp(nil, "{}", extra: [.origin: "https://app.example.com"])
            #expect(allowed.status == .unauthorized)
        }
    }

    @Test func sessionsAreOpenedListedUsedAndEnded() async throws {
        let app = try await App()
        try await app.run { client in
            let tokens = try await client.signIn(app: app)
            let session = try await client.initialize(tokens.accessToken)
            #expect(session.count >= 43)
            let list = try await client.mcp(
                tokens.accessToken, session: session, #"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#)
            let tools = try #require(list.result?["tools"]?.arrayValue)
            #expect(
                tools.compactMap { $0.objectValue?["name"]?.stringValue }
                    == ["whoami", "list-todos", "list-billing", "add-todo", "update-todo", "delete-todo"])
            for tool in tools {
                let object = try #require(tool.objectValue)
                #expect(object["inputSchema"]?.objectValue?["type"] == "object")
                #expect(object["outputSchema"]?.objectValue?["type"] == "object")
                #expect(object["annotations"]?.objectValue?["readOnlyHint"] != nil)
                #expect(object["description"]?.stringValue?.isEmpty == false)
            }
            let whoami = try await client.callTool(tokens.accessToken, session: session, "whoami")
            let identity = try #require(whoami.result?["structuredContent"]?.objectValue)
            #expect(identity["sub"] == "auth0|alice")
            #expect(identity["client_id"] == .string(tokens.clientID))
            #expect(whoami.result?["isError"] == nil || whoami.result?["isError"] == false)

            let end = try await client.mcp(tokens.accessToken, session: session, "", method: .delete)
            #expect(end.status == .ok)
            let gone = try await client.mcp(
                tokens.accessToken, session: session, #"{"jsonrpc":"2.0","id":3,"method":"tools/list"}"#)
            #expect(gone.status == .notFound)
        }
    }

    @Test func sessionRules() async throws {
        let app = try await App()
        try await app.run { client in
            let alice = try await client.signIn(app: app)
            let bob = try await client.signIn(app: app, subject: "auth0|bob")
            let noSession = try await client.mcp(alice.accessToken, #"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#)
            #expect(noSession.status == .badRequest)
            let unknown = try await client.mcp(
                alice.accessToken, session: "no-such-session", #"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#)
            #expect(unknown.status == .notFound)
            let session = try await client.initialize(alice.accessToken)
            let stolen = try await client.mcp(
                bob.accessToken, session: session, #"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#)
            #expect(stolen.status == .notFound)
            // A refreshed token of the same user keeps using the session.
            let refreshed = try jsonObject(
                try await client.postForm(
                    "/token",
                    [
                        ("grant_type", "refresh_token"), ("refresh_token", try #require(alice.refreshToken)),
                        ("client_id", alice.clientID),
                    ]))
            let renewed = try #require(refreshed["access_token"]?.stringValue)
            #expect(
                try await client.mcp(renewed, session: session, #"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#)
                    .status == .ok)
        }
    }

    @Test func aToolWhoseScopeIsMissingIsA403StepUp() async throws {
        let app = try await App()
        app.provider.update { $0.grantedScope = "openid offline_access read:todos" }
        try await app.run { client in
            let bob = try await client.signIn(app: app, subject: "auth0|bob")
            #expect(ScopeSet(spaceSeparated: bob.scope) == ["offline_access", "read:todos"])
            let session = try await client.initialize(bob.accessToken)
            let reply = try await client.callTool(bob.accessToken, session: session, "list-billing")
            #expect(reply.status == .forbidden)
            let challenge = try #require(reply.response.headers[.wwwAuthenticate])
            #expect(challenge.hasPrefix(#"Bearer error="insufficient_scope""#))
            #expect(challenge.contains(#"scope="offline_access read:billing read:todos""#))
            #expect(challenge.hasSuffix(metadata))
            let write = try await client.callTool(bob.accessToken, session: session, "add-todo", #"{"title":"x"}"#)
            #expect(write.status == .forbidden)
            #expect(write.response.headers[.wwwAuthenticate]?.contains("write:todos") == true)
        }
    }

    @Test func anUnreachableTodosAPIIsAToolErrorNotA500() async throws {
        let app = try await App()
        try await app.run { client in
            let tokens = try await client.signIn(app: app)
            let session = try await client.initialize(tokens.accessToken)
            let reply = try await client.callTool(tokens.accessToken, session: session, "list-todos")
            #expect(reply.status == .ok)
            #expect(reply.result?["isError"] == true)
            let text = reply.result?["content"]?.arrayValue?.first?.objectValue?["text"]?.stringValue ?? ""
            #expect(text.contains("could not be reached"))
            // Where the API is, and the connection error, stay in the log.
            #expect(!text.contains("127.0.0.1:9") && !text.contains("http://"))
        }
    }

    @Test func badToolArgumentsAreInvalidParams() async throws {
        let app = try await App()
        try await app.run { client in
            let tokens = try await client.signIn(app: app)
            let session = try await client.initialize(tokens.accessToken)
            for (tool, arguments) in [
                ("delete-todo", #"{"id":"../billing"}"#), ("add-todo", "{}"),
                ("update-todo", #"{"id":"00000000-0000-4000-8000-000000000000"}"#),
                ("list-todos", #"{"unexpected":1}"#), ("no-such-tool", "{}"),
            ] {
                let reply = try await client.callTool(tokens.accessToken, session: session, tool, arguments)
                #expect(reply.messages.first?["error"]?.objectValue?["code"] == -32602, "\(tool)")
            }
        }
    }

    @Test func aRefusedUpstreamRefreshIsA401SoThatTheClientAuthorizesAgain() async throws {
        let app = try await App()
        app.provider.update {
            $0.accessLifetime = 30  // expires within the refresh margin at once
            $0.refreshBehaviour = .invalidGrant
        }
        try await app.run { client in
            let tokens = try await client.signIn(app: app)
            let session = try await client.initialize(tokens.accessToken)
            let reply = try await client.callTool(tokens.accessToken, session: session, "list-todos")
            // Not a tool result the model would read: a 401 invalid_token, which MCP clients answer by authorizing.
            #expect(reply.status == .unauthorized)
            let challenge = reply.response.headers[.wwwAuthenticate] ?? ""
            #expect(challenge.hasPrefix("Bearer ") && challenge.contains(#"error="invalid_token""#))
            #expect(challenge.contains(metadata))
            let error = reply.messages.first?["error"]?.objectValue
            #expect(error?["code"] == -31001)
            #expect(reply.messages.first?["id"] == 7)
            #expect(app.provider.snapshot.refreshCount == 1)
            let next = try await client.callTool(tokens.accessToken, session: session, "whoami")
            #expect(next.status == .unauthorized)
        }
    }
}
