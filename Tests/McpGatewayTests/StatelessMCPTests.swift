import AsyncHTTPClient
import Foundation
import HTTPTypes
import HummingbirdTesting
import JSON
import JWTAuth
import NIOCore
import NIOHTTP1
import Testing

@testable import McpGateway

/// MCP 2026-07-28 on `/mcp`: no session, `_meta` and the standard headers on every request, `server/discover`,
/// cache hints, the specified errors, `subscriptions/listen`.
@Suite("Gateway /mcp, MCP 2026-07-28")
struct StatelessMCPTests {
    typealias App = GatewayTestApp

    @Test func discoveryDescribesTheServer() async throws {
        let app = try await App()
        try await app.run { client in
            let tokens = try await client.signIn(app: app)
            let reply = try await client.stateless(tokens.accessToken, id: "d-1", method: "server/discover")
            #expect(reply.status == .ok)
            #expect(reply.id == "d-1")
            let result = try #require(reply.result)
            #expect(result["resultType"] == "complete")
            #expect(
                result["supportedVersions"] == ["2026-07-28", "2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"])
            #expect(result["capabilities"] == ["tools": ["listChanged": false]])
            #expect(result["instructions"]?.stringValue?.isEmpty == false)
            #expect(result["ttlMs"] == 300_000)
            #expect(result["cacheScope"] == "public")
            #expect(
                result["_meta"]?.objectValue?["io.modelcontextprotocol/serverInfo"]?.objectValue?["name"]
                    == "mcp-todos-gateway")
            #expect(reply.response.headers[MCPHTTP.sessionID] == nil)
        }
    }

    @Test func theToolListCarriesCacheHintsAndAStableOrder() async throws {
        let app = try await App(environment: ["MCP_CACHE_TTL": "60"])
        try await app.run { client in
            let tokens = try await client.signIn(app: app)
            let reply = try await client.stateless(tokens.accessToken, method: "tools/list")
            let result = try #require(reply.result)
            #expect(result["ttlMs"] == 60_000)
            #expect(result["cacheScope"] == "public")
            #expect(result["resultType"] == "complete")
            #expect(
                result["tools"]?.arrayValue?.compactMap { $0.objectValue?["name"]?.stringValue }
                    == ["whoami", "list-todos", "list-billing", "add-todo", "update-todo", "delete-todo"])
            let paged = try await client.stateless(
                tokens.accessToken, id: 2, method: "tools/list", params: ["cursor": "next"])
            #expect(paged.status == .badRequest)
            #expect(paged.errorCode == -32602)
            #expect(paged.id == 2)
        }
    }

    @Test func aToolCallStandsAlone() async throws {
        let app = try await App()
        try await app.run { client in
            let tokens = try await client.signIn(app: app)
            // An Mcp-Session-Id from an older revision is ignored: no session is needed, none is made.
            let reply = try await client.stateless(
                tokens.accessToken, id: "call-1", method: "tools/call",
                params: ["name": "whoami", "arguments": [:]], extra: [MCPHTTP.sessionID: "left-over"])
            #expect(reply.status == .ok)
            #expect(reply.id == "call-1")
            let result = try #require(reply.result)
            #expect(result["resultType"] == "complete")
            #expect(result["structuredContent"]?.objectValue?["sub"] == "auth0|alice")
            #expect(result["isError"] == false)
            #expect(result["_meta"]?.objectValue?["io.modelcontextprotocol/serverInfo"] != nil)
            #expect(reply.response.headers[.contentType] == "application/json")
            #expect(app.sessions?.count == 0)
        }
    }

    @Test func aClientThatAcceptsOnlyEventStreamsGetsOneEvent() async throws {
        let app = try await App()
        try await app.run { client in
            let tokens = try await client.signIn(app: app)
            let reply = try await client.stateless(
                tokens.accessToken, method: "tools/list", extra: [.accept: "text/event-stream"])
            #expect(reply.response.headers[.contentType] == "text/event-stream")
            #expect(reply.result?["tools"]?.arrayValue?.count == 6)
            let neither = try await client.stateless(
                tokens.accessToken, method: "tools/list", extra: [.accept: "text/html"])
            #expect(neither.status == .notAcceptable)
        }
    }

    @Test func theEnvelopeIsRequired() async throws {
        let app = try await App()
        try await app.run { client in
            let token = try await client.signIn(app: app).accessToken
            let cases: [JSONValue] = [
                ["io.modelcontextprotocol/protocolVersion": "2026-07-28"],
                ["io.modelcontextprotocol/clientCapabilities": [:]],
                ["io.modelcontextprotocol/protocolVersion": 2026, "io.modelcontextprotocol/clientCapabilities": [:]],
                [
                    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                    "io.modelcontextprotocol/clientCapabilities": "none",
                ],
                "not an object",
            ]
            for meta in cases {
                let reply = try await client.stateless(token, id: 5, method: "tools/list", meta: meta)
                #expect(reply.status == .badRequest, "\(meta)")
                #expect(reply.errorCode == -32602, "\(meta)")
                #expect(reply.id == 5, "\(meta)")
            }
            // No _meta at all, with the 2026-07-28 header.
            let bare = try await client.stateless(token, id: 6, method: "tools/list", meta: .null)
            #expect(bare.status == .badRequest)
            #expect(bare.errorCode == -32602)
        }
    }

    @Test func headersMustMatchTheBody() async throws {
        let app = try await App()
        try await app.run { client in
            let token = try await client.signIn(app: app).accessToken
            let call: [String: JSONValue] = ["name": "whoami", "arguments": [:]]
            let version = MCPHTTP.protocolVersion
            let method = MCPHTTP.method
            let name = MCPHTTP.name
            let mismatches: [(String, HTTPFields)] = [
                ("no version header", [method: "tools/call", name: "whoami"]),
                ("another version", [version: "2025-11-25", method: "tools/call", name: "whoami"]),
                ("no method header", [version: "2026-07-28", name: "whoami"]),
                ("another method", [version: "2026-07-28", method: "tools/list", name: "whoami"]),
                ("no name header", [version: "2026-07-28", method: "tools/call"]),
                ("another name", [version: "2026-07-28", method: "tools/call", name: "list-todos"]),
                ("invalid Base64", [version: "2026-07-28", method: "tools/call", name: "=?base64?!!!?="]),
                ("the name twice", [version: "2026-07-28", method: "tools/call", name: "whoami", name: "whoami"]),
                ("a name outside visible ASCII", [version: "2026-07-28", method: "tools/call", name: "whoämi"]),
                (
                    "the method twice",
                    [version: "2026-07-28", method: "tools/call", method: "tools/call", name: "whoami"]
                ),
            ]
            for (label, headers) in mismatches {
                let reply = try await client.stateless(
                    token, id: "m", method: "tools/call", params: call, headers: headers)
                #expect(reply.status == .badRequest, "\(label)")
                #expect(reply.errorCode == -32020, "\(label)")
                #expect(reply.id == "m", "\(label)")
            }
            // The Base64 form of a name is decoded before comparing.
            let encoded = try await client.stateless(
                token, method: "tools/call", params: call,
                headers: [version: "2026-07-28", method: "tools/call", name: "=?base64?d2hvYW1p?="])
            #expect(encoded.status == .ok)
            #expect(encoded.result?["isError"] == false)
        }
    }

    @Test func anUnsupportedVersionListsTheSupportedOnes() async throws {
        let app = try await App()
        try await app.run { client in
            let token = try await client.signIn(app: app).accessToken
            let reply = try await client.stateless(token, id: 9, method: "tools/list", version: "2099-01-01")
            #expect(reply.status == .badRequest)
            #expect(reply.errorCode == -32022)
            #expect(reply.id == 9)
            let data = try #require(reply.error?["data"]?.objectValue)
            #expect(data["requested"] == "2099-01-01")
            #expect(data["supported"]?.arrayValue?.first == "2026-07-28")
            #expect(data["supported"]?.arrayValue?.contains("2025-11-25") == true)
            // A notification at an unknown version is told the same.
            let notification = try await client.stateless(
                token, id: .null, method: "notifications/cancelled", version: "2099-01-01")
            #expect(notification.status == .badRequest)
            #expect(notification.errorCode == -32022)
        }
    }

    @Test func methodsAndMessagesTheRevisionDoesNotHave() async throws {
        let app = try await App()
        try await app.run { client in
            let token = try await client.signIn(app: app).accessToken
            for method in ["ping", "resources/list", "prompts/list", "logging/setLevel", "no/such"] {
                let reply = try await client.stateless(token, id: "u", method: method)
                #expect(reply.status == .notFound, "\(method)")
                #expect(reply.errorCode == -32601, "\(method)")
                #expect(reply.id == "u", "\(method)")
            }
            let notification = try await client.stateless(token, id: .null, method: "notifications/cancelled")
            #expect(notification.status == .accepted)
            #expect(notification.response.body.readableBytes == 0)
            let response = try await client.mcp(
                token, #"{"jsonrpc":"2.0","id":1,"result":{}}"#, extra: [MCPHTTP.protocolVersion: "2026-07-28"])
            #expect(response.status == .badRequest)
            #expect(response.errorCode == -32600)
            // GET and DELETE belong to sessions of earlier revisions.
            for verb in [HTTPRequest.Method.get, .delete] {
                let reply = try await client.mcp(
                    token, "", method: verb, extra: [MCPHTTP.protocolVersion: "2026-07-28"])
                #expect(reply.status == .methodNotAllowed)
                #expect(reply.response.headers[.allow] == "POST")
            }
        }
    }

    @Test func aMissingScopeIsAStepUpChallenge() async throws {
        let app = try await App()
        app.provider.update { $0.grantedScope = "openid offline_access read:todos" }
        try await app.run { client in
            let bob = try await client.signIn(app: app, subject: "auth0|bob")
            let reply = try await client.stateless(
                bob.accessToken, method: "tools/call", params: ["name": "list-billing", "arguments": [:]])
            #expect(reply.status == .forbidden)
            let challenge = try #require(reply.response.headers[.wwwAuthenticate])
            #expect(challenge.hasPrefix(#"Bearer error="insufficient_scope""#))
            #expect(challenge.contains(#"scope="offline_access read:billing read:todos""#))
            #expect(reply.id == 1)
            #expect(reply.errorCode == -31003)
            #expect(reply.error?["data"]?.objectValue?["scope"] == "read:billing")
        }
    }

    @Test func theTraceContextReachesTodosAPI() async throws {
        let api = FakeTodosAPI()
        try await api.run { apiURL in
            let app = try await App(environment: ["API_BASE_URL": apiURL])
            try await app.run { client in
                let token = try await client.signIn(app: app).accessToken
                let parent = "00-0af7651916cd43dd8448eb211c80319c-00f067aa0ba902b7-01"
                let meta: JSONValue = [
                    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                    "io.modelcontextprotocol/clientCapabilities": [:], "traceparent": .string(parent),
                    "tracestate": "vendor=abc",
                ]
                _ = try await client.stateless(
                    token, method: "tools/call", params: ["name": "list-todos", "arguments": [:]], meta: meta)
                var malformed = meta.objectValue ?? [:]
                malformed["traceparent"] = "00-00000000000000000000000000000000-00f067aa0ba902b7-01"
                _ = try await client.stateless(
                    token, method: "tools/call", params: ["name": "list-todos", "arguments": [:]],
                    meta: .object(malformed))
            }
            #expect(api.seen.count == 2)
            #expect(api.seen.first?.traceparent == "00-0af7651916cd43dd8448eb211c80319c-00f067aa0ba902b7-01")
            #expect(api.seen.first?.tracestate == "vendor=abc")
            #expect(api.seen.last?.traceparent == nil)
        }
    }

    @Test func listenOpensAnAcknowledgedStream() async throws {
        let app = try await App(environment: ["MCP_MAX_STREAMS_PER_USER": "1"])
        try await app.run(mode: .live) { client in
            let port = try #require(client.port)
            let token = try await client.signIn(app: app).accessToken
            let refused = try await client.stateless(
                token, id: 3, method: "subscriptions/listen", params: ["notifications": ["toolsListChanged": "yes"]])
            #expect(refused.status == .badRequest)
            #expect(refused.errorCode == -32602)
            let json = try await client.stateless(
                token, id: 3, method: "subscriptions/listen", params: ["notifications": [:]],
                extra: [.accept: "application/json"])
            #expect(json.status == .notAcceptable)

            let stream = try await Self.listen(port: port, token: token, id: "sub-1")
            let acknowledged = try await stream.nextMessage()
            #expect(acknowledged["method"] == "notifications/subscriptions/acknowledged")
            let params = try #require(acknowledged["params"]?.objectValue)
            #expect(params["_meta"]?.objectValue?["io.modelcontextprotocol/subscriptionId"] == "sub-1")
            #expect(params["notifications"] == [:])
            // One stream per user here: a second is refused while the first is open.
            let second = try await client.stateless(
                token, id: 4, method: "subscriptions/listen", params: ["notifications": [:]])
            #expect(second.status == .tooManyRequests)
            #expect(second.id == 4)
        }
    }

    /// Opens `subscriptions/listen` on the live server.
    static func listen(port: Int, token: String, id: String) async throws -> SSEReader {
        let body = JSONValue.object([
            "jsonrpc": "2.0", "id": .string(id), "method": "subscriptions/listen",
            "params": [
                "notifications": ["toolsListChanged": true],
                "_meta": [
                    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                    "io.modelcontextprotocol/clientCapabilities": [:],
                ],
            ],
        ])
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/mcp")
        request.method = .POST
        request.headers.add(name: "Authorization", value: "Bearer \(token)")
        request.headers.add(name: "Accept", value: "application/json, text/event-stream")
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "MCP-Protocol-Version", value: "2026-07-28")
        request.headers.add(name: "Mcp-Method", value: "subscriptions/listen")
        request.body = .bytes(ByteBuffer(bytes: body.serialized()))
        let response = try await App.httpClient.execute(request, timeout: .seconds(10))
        #expect(response.status == .ok)
        #expect(response.headers.first(name: "Content-Type") == "text/event-stream")
        return SSEReader(response)
    }
}
