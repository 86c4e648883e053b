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

/// The session revisions on `/mcp` (2025-03-26, 2025-06-18, 2025-11-25): negotiation, what a session answers, batches
/// (2025-03-26 only), the GET stream.
@Suite("Gateway /mcp, session revisions")
struct SessionRevisionTests {
    typealias App = GatewayTestApp

    @Test(arguments: [
        ("2025-03-26", "2025-03-26"), ("2025-06-18", "2025-06-18"), ("2025-11-25", "2025-11-25"),
        ("2024-11-05", "2024-11-05"), ("2026-07-28", "2025-11-25"), ("2099-01-01", "2025-11-25"),
        ("not-a-version", "2025-11-25"),
    ])
    func initializeNegotiatesTheRevision(requested: String, negotiated: String) async throws {
        let app = try await App()
        try await app.run { client in
            let token = try await client.signIn(app: app).accessToken
            let reply = try await client.mcp(
                token,
                #"{"jsonrpc":"2.0","id":"init","method":"initialize","params":{"protocolVersion":"\#(requested)","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#,
                // A client that knows 2026-07-28 may send its header with initialize; initialize still opens a session.
                extra: [MCPHTTP.protocolVersion: requested])
            #expect(reply.status == .ok)
            #expect(reply.id == "init")
            let result = try #require(reply.result)
            #expect(result["protocolVersion"] == .string(negotiated))
            #expect(result["capabilities"] == ["tools": ["listChanged": false]])
            #expect(result["serverInfo"]?.objectValue?["name"] == "mcp-todos-gateway")
            #expect(result["resultType"] == nil)
            #expect(reply.response.headers[MCPHTTP.sessionID] != nil)
        }
    }

    @Test func initializeChecksItsParameters() async throws {
        let app = try await App()
        try await app.run { client in
            let token = try await client.signIn(app: app).accessToken
            for params in [
                #"{"capabilities":{}}"#, #"{"protocolVersion":20250618,"capabilities":{}}"#,
                #"{"protocolVersion":"2025-06-18"}"#,
                #"{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":7}"#,
            ] {
                let reply = try await client.mcp(
                    token, #"{"jsonrpc":"2.0","id":4,"method":"initialize","params":\#(params)}"#)
                #expect(reply.status == .badRequest, "\(params)")
                #expect(reply.errorCode == -32602, "\(params)")
                #expect(reply.id == 4, "\(params)")
            }
            let session = try await client.initialize(token, revision: "2025-06-18")
            let again = try await client.mcp(
                token, session: session,
                #"{"jsonrpc":"2.0","id":5,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{}}}"#
            )
            #expect(again.status == .badRequest)
            #expect(again.errorCode == -32600)
            #expect(app.sessions?.count == 1)
        }
    }

    @Test(arguments: ["2025-03-26", "2025-06-18", "2025-11-25"])
    func aSessionAnswersItsMethods(revision: String) async throws {
        let app = try await App()
        try await app.run { client in
            let token = try await client.signIn(app: app).accessToken
            let session = try await client.initialize(token, revision: revision)
            let headers: HTTPFields = [MCPHTTP.protocolVersion: revision]
            let ping = try await client.mcp(
                token, session: session, #"{"jsonrpc":"2.0","id":"p","method":"ping"}"#, extra: headers)
            #expect(ping.status == .ok)
            #expect(ping.id == "p")
            #expect(ping.result == [:])
            #expect(ping.response.headers[MCPHTTP.sessionID] == session)
            let list = try await client.mcp(
                token, session: session, #"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#, extra: headers)
            #expect(list.result?["tools"]?.arrayValue?.count == 6)
            #expect(list.result?["ttlMs"] == nil)
            // Errors of a method are ordinary responses in these revisions.
            for method in ["no/such", "server/discover", "subscriptions/listen", "resources/list"] {
                let unknown = try await client.mcp(
                    token, session: session, #"{"jsonrpc":"2.0","id":3,"method":"\#(method)"}"#, extra: headers)
                #expect(unknown.status == .ok, "\(method)")
                #expect(unknown.errorCode == -32601, "\(method)")
                #expect(unknown.id == 3, "\(method)")
            }
            let notification = try await client.mcp(
                token, session: session,
                #"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":1}}"#)
            #expect(notification.status == .accepted)
            let response = try await client.mcp(token, session: session, #"{"jsonrpc":"2.0","id":"s1","result":{}}"#)
            #expect(response.status == .accepted)
            if revision != "2025-03-26" {
                let otherVersion = try await client.mcp(
                    token, session: session, #"{"jsonrpc":"2.0","id":6,"method":"ping"}"#,
                    extra: [MCPHTTP.protocolVersion: "2025-03-26"])
                #expect(otherVersion.status == .badRequest)
                #expect(otherVersion.errorCode == -32600)
                #expect(otherVersion.id == 6)
            }
            // A version the gateway does not know is answered as 2026-07-28 answers it: with the versions it speaks.
            let unknownVersion = try await client.mcp(
                token, session: session, #"{"jsonrpc":"2.0","id":7,"method":"ping"}"#,
                extra: [MCPHTTP.protocolVersion: "2030-01-01"])
            #expect(unknownVersion.status == .badRequest)
            #expect(unknownVersion.errorCode == -32022)
            let badTool = try await client.mcp(
                token, session: session,
                #"{"jsonrpc":"2.0","id":8,"method":"tools/call","params":{"name":"whoami","arguments":[]}}"#)
            #expect(badTool.status == .ok)
            #expect(badTool.errorCode == -32602)
            #expect(badTool.id == 8)
        }
    }

    @Test func batchesBelongTo2025_03_26Only() async throws {
        let app = try await App(environment: ["MCP_MAX_BATCH": "4"])
        try await app.run { client in
            let token = try await client.signIn(app: app).accessToken
            let old = try await client.initialize(token, revision: "2025-03-26")
            let batch = try await client.mcp(
                token, session: old,
                #"[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","method":"notifications/progress"},{"jsonrpc":"2.0","id":true,"method":"ping"},{"jsonrpc":"2.0","id":"t","method":"tools/list"}]"#
            )
            #expect(batch.status == .ok)
            let answers = try #require(try JSONValue(parsing: batch.response.body.readableBytesView).arrayValue)
            #expect(answers.count == 3)
            #expect(answers[0].objectValue?["id"] == 1)
            #expect(answers[0].objectValue?["result"] == [:])
            #expect(answers[1].objectValue?["id"] == .null)
            #expect(answers[1].objectValue?["error"]?.objectValue?["code"] == -32600)
            #expect(answers[2].objectValue?["id"] == "t")
            #expect(answers[2].objectValue?["result"]?.objectValue?["tools"]?.arrayValue?.count == 6)

            let notifications = try await client.mcp(
                token, session: old, #"[{"jsonrpc":"2.0","method":"notifications/progress"}]"#)
            #expect(notifications.status == .accepted)
            for body in ["[]", Array(repeating: #"{"jsonrpc":"2.0","id":1,"method":"ping"}"#, count: 5).description] {
                let refused = try await client.mcp(token, session: old, body)
                #expect(refused.status == .badRequest)
                #expect(refused.errorCode == -32600)
            }

            let newer = try await client.initialize(token, revision: "2025-06-18")
            let refused = try await client.mcp(token, session: newer, #"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#)
            #expect(refused.status == .badRequest)
            #expect(refused.errorCode == -32600)
            let sessionless = try await client.mcp(token, #"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#)
            #expect(sessionless.status == .badRequest)
        }
    }

    @Test func theGETStreamIsOnePerSessionAndEndsWithIt() async throws {
        let app = try await App()
        try await app.run(mode: .live) { client in
            let port = try #require(client.port)
            let token = try await client.signIn(app: app).accessToken
            let session = try await client.initialize(token, revision: "2025-11-25")
            var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/mcp")
            request.headers.add(name: "Authorization", value: "Bearer \(token)")
            request.headers.add(name: "Accept", value: "text/event-stream")
            request.headers.add(name: "Mcp-Session-Id", value: session)
            let stream = try await App.httpClient.execute(request, timeout: .seconds(10))
            #expect(stream.status == .ok)
            #expect(stream.headers.first(name: "Content-Type") == "text/event-stream")
            var iterator = stream.body.makeAsyncIterator()
            // 2025-11-25's priming event: an id, no data.
            #expect(try await iterator.next().map { String(buffer: $0) } == "id: 0\ndata: \n\n")
            let second = try await App.httpClient.execute(request, timeout: .seconds(10))
            #expect(second.status == .conflict)
            let end = try await client.mcp(token, session: session, "", method: .delete)
            #expect(end.status == .ok)
            // The stream ends with the session.
            while try await iterator.next() != nil {}
            let after = try await App.httpClient.execute(request, timeout: .seconds(10))
            #expect(after.status == .notFound)
        }
    }
}
