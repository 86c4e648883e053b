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

/// What the MCP endpoints refuse so that no client can make the gateway hold or do more than its share: oversized
/// bodies and ids, too many requests in flight, too many sessions, browser requests from other sites. Each refusal
/// has its HTTP status and a JSON-RPC error that echoes the request's id whenever it could be read.
@Suite("Gateway MCP bounds")
struct MCPBoundsTests {
    typealias App = GatewayTestApp

    static let badIDs = [
        "true", "false", "null", "1.5", "-0.0", "{}", "[1]", "\"\(String(repeating: "x", count: 129))\"",
    ]

    @Test(arguments: badIDs)
    func anIDMustBeAStringOrIntegerOfAtMost128Bytes(id: String) async throws {
        let app = try await App()
        try await app.run { client in
            let token = try await client.signIn(app: app).accessToken
            let session = try await client.initialize(token, revision: "2025-11-25")
            let inSession = try await client.mcp(
                token, session: session, #"{"jsonrpc":"2.0","id":\#(id),"method":"ping"}"#)
            #expect(inSession.status == .badRequest)
            #expect(inSession.errorCode == -32600)
            #expect(inSession.id == .null)
            let stateless = try await client.mcp(
                token,
                #"{"jsonrpc":"2.0","id":\#(id),"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}"#,
                extra: [MCPHTTP.protocolVersion: "2026-07-28", MCPHTTP.method: "tools/list"])
            #expect(stateless.status == .badRequest)
            #expect(stateless.errorCode == -32600)
        }
    }

    @Test func theLongestIDIsEchoed() async throws {
        let app = try await App()
        try await app.run { client in
            let token = try await client.signIn(app: app).accessToken
            let id = String(repeating: "é", count: 64)  // 128 bytes
            let reply = try await client.stateless(token, id: .string(id), method: "tools/list")
            #expect(reply.status == .ok)
            #expect(reply.id == .string(id))
        }
    }

    @Test func malformedMessagesAreRefusedWithTheIdWhenKnown() async throws {
        let app = try await App()
        try await app.run { client in
            let token = try await client.signIn(app: app).accessToken
            let session = try await client.initialize(token, revision: "2025-11-25")
            let cases: [(String, Int, JSONValue)] = [
                ("{not json", -32700, .null),
                // Valid JSON grammar, but no number the gateway can hold: refused as unparseable.
                (#"{"jsonrpc":"2.0","id":1e400,"method":"ping"}"#, -32700, .null),
                (#""just a string""#, -32600, .null),
                (#"{"jsonrpc":"1.0","id":4,"method":"ping"}"#, -32600, 4),
                (#"{"id":4,"method":"ping"}"#, -32600, 4),
                (#"{"jsonrpc":"2.0","id":4,"method":7}"#, -32600, 4),
                (#"{"jsonrpc":"2.0","id":4,"method":""}"#, -32600, 4),
                (#"{"jsonrpc":"2.0","id":4,"method":"ping","params":[1]}"#, -32602, 4),
                (#"{"jsonrpc":"2.0","id":4}"#, -32600, 4),
            ]
            for (body, code, id) in cases {
                let reply = try await client.mcp(token, session: session, body)
                #expect(reply.status == .badRequest, "\(body)")
                #expect(reply.errorCode == .integer(Int64(code)), "\(body)")
                #expect(reply.id == id, "\(body)")
            }
        }
    }

    @Test func bodiesAreBoundedAndMustBeJSON() async throws {
        let app = try await App(environment: ["MCP_MAX_REQUEST_BYTES": "4096"])
        try await app.run { client in
            let token = try await client.signIn(app: app).accessToken
            let session = try await client.initialize(token, revision: "2025-11-25")
            let big =
                #"{"jsonrpc":"2.0","id":1,"method":"ping","params":{"pad":"\#(String(repeating: "x", count: 5000))"}}"#
            let tooLarge = try await client.mcp(token, session: session, big)
            #expect(tooLarge.status == .contentTooLarge)
            #expect(tooLarge.errorCode == -32600)
            let text = try await client.execute(
                uri: "/mcp", method: .post,
                headers: bearer(token) + [.contentType: "text/plain", MCPHTTP.sessionID: session],
                body: ByteBuffer(string: #"{"jsonrpc":"2.0","id":1,"method":"ping"}"#))
            #expect(text.status == .unsupportedMediaType)
        }
    }

    @Test func aSessionHasALimitOfRequestsInFlight() async throws {
        let api = FakeTodosAPI(holding: true)
        try await api.run { apiURL in
            let app = try await App(environment: ["API_BASE_URL": apiURL, "MCP_MAX_IN_FLIGHT_PER_SESSION": "2"])
            try await app.run { client in
                let token = try await client.signIn(app: app).accessToken
                let session = try await client.initialize(token, revision: "2025-11-25")
                try await withThrowingTaskGroup(of: MCPReply.self) { group in
                    for _ in 0..<2 {
                        group.addTask { try await client.callTool(token, session: session, "list-todos") }
                    }
                    try await api.waitUntilHolding(2)
                    let refused = try await client.mcp(
                        token, session: session,
                        #"{"jsonrpc":"2.0","id":"third","method":"tools/call","params":{"name":"list-todos"}}"#)
                    #expect(refused.status == .tooManyRequests)
                    #expect(refused.errorCode == -31000)
                    #expect(refused.id == "third")
                    #expect(refused.response.headers[.retryAfter] == "1")
                    // Another session of the same user is not held up.
                    let other = try await client.initialize(token, revision: "2025-11-25")
                    #expect(
                        try await client.mcp(token, session: other, #"{"jsonrpc":"2.0","id":1,"method":"ping"}"#).status
                            == .ok)
                    api.release()
                    for try await reply in group { #expect(reply.result?["isError"] == false) }
                }
                // Once they are answered, the places are free again.
                #expect(try await client.callTool(token, session: session, "list-todos").status == .ok)
            }
        }
    }

    @Test func aUserHasALimitOfRequestsInFlight() async throws {
        let api = FakeTodosAPI(holding: true)
        try await api.run { apiURL in
            let app = try await App(environment: ["API_BASE_URL": apiURL, "MCP_MAX_IN_FLIGHT_PER_USER": "2"])
            try await app.run { client in
                let alice = try await client.signIn(app: app).accessToken
                let bob = try await client.signIn(app: app, subject: "auth0|bob").accessToken
                let call: [String: JSONValue] = ["name": "list-todos", "arguments": [:]]
                try await withThrowingTaskGroup(of: MCPReply.self) { group in
                    for _ in 0..<2 {
                        group.addTask { try await client.stateless(alice, method: "tools/call", params: call) }
                    }
                    try await api.waitUntilHolding(2)
                    let refused = try await client.stateless(alice, id: 3, method: "tools/list")
                    #expect(refused.status == .tooManyRequests)
                    #expect(refused.errorCode == -31000)
                    #expect(try await client.stateless(bob, method: "tools/list").status == .ok)
                    api.release()
                    for try await reply in group { #expect(reply.status == .ok) }
                }
                #expect(try await client.stateless(alice, method: "tools/list").status == .ok)
            }
        }
    }

    @Test func aBatchIsAnsweredWithinTheLimitsAndCountsAgainstThem() async throws {
        let api = FakeTodosAPI(holding: true)
        try await api.run { apiURL in
            let app = try await App(environment: [
                "API_BASE_URL": apiURL, "MCP_MAX_IN_FLIGHT_PER_SESSION": "2", "MCP_MAX_IN_FLIGHT_PER_USER": "3",
            ])
            try await app.run { client in
                let token = try await client.signIn(app: app).accessToken
                let session = try await client.initialize(token, revision: "2025-03-26")
                // Five requests, at most two at a time: the batch is answered whole.
                let pings =
                    "[" + (1...5).map { #"{"jsonrpc":"2.0","id":\#($0),"method":"ping"}"# }.joined(separator: ",") + "]"
                let answered = try await client.mcp(token, session: session, pings)
                #expect(answered.status == .ok)
                #expect(try JSONValue(parsing: answered.response.body.readableBytesView).arrayValue?.count == 5)
                // While a batch of tool calls is in flight it holds two of the user's three places (and both of the
                // session's): one more request of the user fits, a second does not.
                let calls =
                    "["
                    + (1...3).map {
                        #"{"jsonrpc":"2.0","id":\#($0),"method":"tools/call","params":{"name":"list-todos"}}"#
                    }.joined(separator: ",") + "]"
                try await withThrowingTaskGroup(of: MCPReply.self) { group in
                    group.addTask { try await client.mcp(token, session: session, calls) }
                    try await api.waitUntilHolding(2)
                    let other = try await client.initialize(token, revision: "2025-11-25")
                    group.addTask { try await client.callTool(token, session: other, "list-todos") }
                    try await api.waitUntilHolding(3)
                    let refused = try await client.stateless(token, id: 9, method: "tools/list")
                    #expect(refused.status == .tooManyRequests)
                    api.release()
                    for try await reply in group { #expect(reply.status == .ok) }
                }
            }
        }
    }

    @Test func aFullGatewayRefusesNewSessions() async throws {
        let app = try await App(environment: ["MCP_MAX_SESSIONS": "2"])
        try await app.run { client in
            let alice = try await client.signIn(app: app).accessToken
            let bob = try await client.signIn(app: app, subject: "auth0|bob").accessToken
            let first = try await client.initialize(alice, revision: "2025-11-25")
            let second = try await client.initialize(alice, revision: "2025-11-25")
            let refused = try await client.mcp(
                bob,
                #"{"jsonrpc":"2.0","id":"i","method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{}}}"#
            )
            #expect(refused.status == .serviceUnavailable)
            #expect(refused.response.headers[.retryAfter] != nil)
            #expect(refused.id == "i")
            #expect(refused.errorCode == -31000)
            // Alice's sessions are intact, and stateless requests need no session at all.
            for session in [first, second] {
                #expect(
                    try await client.mcp(alice, session: session, #"{"jsonrpc":"2.0","id":1,"method":"ping"}"#).status
                        == .ok)
            }
            #expect(try await client.stateless(bob, method: "tools/list").status == .ok)
        }
    }

    @Test func theLegacyTransportHasTheSameLimits() async throws {
        let api = FakeTodosAPI(holding: true)
        try await api.run { apiURL in
            let app = try await App(environment: ["API_BASE_URL": apiURL, "MCP_MAX_IN_FLIGHT_PER_SESSION": "1"])
            try await app.run(mode: .live) { client in
                let port = try #require(client.port)
                let token = try await client.signIn(app: app).accessToken
                let (events, endpoint) = try await LegacySSETests.open(port: port, token: token)
                let call = #"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"list-todos"}}"#
                #expect(try await client.postJSON(endpoint, call, headers: bearer(token)).status == .accepted)
                try await api.waitUntilHolding(1)
                let refused = try await client.postJSON(
                    endpoint, #"{"jsonrpc":"2.0","id":2,"method":"ping"}"#, headers: bearer(token))
                #expect(refused.status == .tooManyRequests)
                // The refusal also travels on the stream, where the client waits for its answer.
                let busy = try await events.nextMessage()
                #expect(busy["id"] == 2)
                #expect(busy["error"]?.objectValue?["code"] == -31000)
                api.release()
                let answered = try await events.nextMessage()
                #expect(answered["id"] == 1)
                let batch = try await client.postJSON(
                    endpoint, #"[{"jsonrpc":"2.0","id":3,"method":"ping"}]"#, headers: bearer(token))
                #expect(batch.status == .badRequest)
            }
        }
    }

    @Test func browserRequestsFromOtherSitesAreRefused() async throws {
        let app = try await App()
        try await app.run { client in
            let token = try await client.signIn(app: app).accessToken
            for site in ["cross-site", "same-site"] {
                for (path, method) in [("/sse", HTTPRequest.Method.get), ("/mcp", .post)] {
                    let response = try await client.execute(
                        uri: path, method: method,
                        headers: bearer(token) + [
                            HTTPField.Name("Sec-Fetch-Site")!: site, .accept: "text/event-stream",
                        ])
                    #expect(response.status == .forbidden, "\(site) \(path)")
                }
            }
            let sameOrigin = try await client.stateless(
                token, method: "tools/list", extra: [HTTPField.Name("Sec-Fetch-Site")!: "same-origin"])
            #expect(sameOrigin.status == .ok)
        }
    }
}
