import Foundation
import HTTPTypes
import HummingbirdTesting
import JSON
import JWTAuth
import NIOCore
import ServiceSupport
import TestSupport
import Testing

@testable import McpGateway

@Suite("Gateway /token and /revoke")
struct TokenTests {
    typealias App = GatewayTestApp

    func exchange(
        _ client: any TestClientProtocol, code: String, verifier: String, clientID: String,
        redirect: String = App.redirectURI, headers: HTTPFields = [:], extra: [(String, String)] = []
    )
        async throws -> TestResponse
    {
        var fields = [
            ("grant_type", "authorization_code"), ("code", code), ("redirect_uri", redirect),
            ("code_verifier", verifier),
        ]
        if headers[.authorization] == nil { fields.append(("client_id", clientID)) }
        return try await client.postForm("/token", fields + extra, headers: headers)
    }

    func mcpStatus(_ client: any TestClientProtocol, _ token: String) async throws -> HTTPResponse.Status {
        try await client.execute(
            uri: "/mcp", method: .post,
            headers: [
                .authorization: "Bearer \(token)", .contentType: "application/json",
                .accept: "application/json, text/event-stream",
            ], body: ByteBuffer(string: #"{"jsonrpc":"2.0","id":1,"method":"ping"}"#)
        ).status
    }

    @Test func exchangesACodeForPrefixedTokens() async throws {
        let app = try await App()
        try await app.run { client in
            let registered = try await client.registerClient()
            let pkce = PKCEPair()
            let redirect = try await client.authorize(app: app, clientID: registered.id, pkce: pkce)
            let response = try await exchange(
                client, code: try #require(redirect["code"]), verifier: pkce.verifier, clientID: registered.id)
            #expect(response.status == .ok)
            #expect(response.headers[.cacheControl] == "no-store")
            let tokens = try jsonObject(response)
            #expect(tokens["token_type"] == "Bearer")
            #expect(tokens["expires_in"] == 3600)
            let access = try #require(tokens["access_token"]?.stringValue)
            #expect(access.hasPrefix("mcpgw_at_") && access.count >= 9 + 43)
            #expect(tokens["refresh_token"]?.stringValue?.hasPrefix("mcpgw_rt_") == true)
            #expect(ScopeSet(spaceSeparated: tokens["scope"]?.stringValue ?? "") == ["read:todos", "write:todos", "read:billing", "offline_access"])
        }
    }

    @Test func codeExchangeFailures() async throws {
        let app = try await App()
        try await app.run { client in
            let registered = try await client.registerClient()
            let other = try await client.registerClient()
            func freshCode(_ pkce: PKCEPair) async throws -> String {
                try #require(try await client.authorize(app: app, clientID: registered.id, pkce: pkce)["code"])
            }
            let pkce = PKCEPair()
            try expectOAuthError(
                try await exchange(
                    client, code: try await freshCode(pkce), verifier: PKCEPair().verifier, clientID: registered.id),
                .badRequest, "invalid_grant")
            try expectOAuthError(
                try await exchange(
                    client, code: try await freshCode(pkce), verifier: pkce.verifier, clientID: registered.id,
                    redirect: "http://localhost:3030/other"), .badRequest, "invalid_grant")
            try expectOAuthError(
                try await exchange(
                    client, code: try await freshCode(pkce), verifier: pkce.verifier, clientID: other.id), .badRequest,
                "invalid_grant")
            try expectOAuthError(
                try await exchange(client, code: "mcpgw_ac_unknown", verifier: pkce.verifier, clientID: registered.id),
                .badRequest, "invalid_grant")
            try expectOAuthError(
                try await exchange(
                    client, code: try await freshCode(pkce), verifier: pkce.verifier, clientID: registered.id,
                    extra: [("resource", "https://other.example/mcp")]), .badRequest, "invalid_target")
            // A verifier that matches but is not 43–128 unreserved characters.
            let short = PKCEPair(verifier: String(repeating: "v", count: 42))
            try expectOAuthError(
                try await exchange(
                    client, code: try await freshCode(short), verifier: short.verifier, clientID: registered.id),
                .badRequest, "invalid_grant")
            let expiring = try await freshCode(pkce)
            app.clock.advance(by: 61)
            try expectOAuthError(
                try await exchange(client, code: expiring, verifier: pkce.verifier, clientID: registered.id),
                .badRequest, "invalid_grant")
            let missing = try await client.postForm(
                "/token", [("grant_type", "authorization_code"), ("client_id", registered.id), ("code", "x")])
            try expectOAuthError(missing, .badRequest, "invalid_request")
        }
    }

    @Test func aReplayedCodeRevokesEverythingItProduced() async throws {
        let app = try await App()
        try await app.run { client in
            let registered = try await client.registerClient()
            let pkce = PKCEPair()
            let code = try #require(try await client.authorize(app: app, clientID: registered.id, pkce: pkce)["code"])
            let first = try jsonObject(
                try await exchange(client, code: code, verifier: pkce.verifier, clientID: registered.id))
            let access = try #require(first["access_token"]?.stringValue)
            #expect(try await mcpStatus(client, access) != .unauthorized)
            try expectOAuthError(
                try await exchange(client, code: code, verifier: pkce.verifier, clientID: registered.id), .badRequest,
                "invalid_grant")
            #expect(try await mcpStatus(client, access) == .unauthorized)
            let refreshed = try await client.postForm(
                "/token",
                [
                    ("grant_type", "refresh_token"), ("client_id", registered.id),
                    ("refresh_token", try #require(first["refresh_token"]?.stringValue)),
                ])
            try expectOAuthError(refreshed, .badRequest, "invalid_grant")
            // One audit line for the replay, naming the client and the grant it ended.
            let replays = app.audit.auditEvents.filter { $0.event == "code_replayed" }
            #expect(replays.count == 1)
            #expect(replays.first?.metadata["oauth.client_id"] == registered.id)
            #expect(replays.first?.metadata["oauth.grant_id"]?.isEmpty == false)
        }
    }

    @Test func clientAuthenticationFollowsTheRegisteredMethod() async throws {
        let app = try await App()
        try await app.run { client in
            let basic = try await client.registerClient(authMethod: "client_secret_basic")
            let secret = try #require(basic.secret)
            let pkce = PKCEPair()
            let code = try #require(try await client.authorize(app: app, clientID: basic.id, pkce: pkce)["code"])
            func basicHeader(_ id: String, _ secret: String) -> HTTPFields {
                [.authorization: "Basic " + Data("\(id):\(secret)".utf8).base64EncodedString()]
            }
            let wrong = try await exchange(
                client, code: code, verifier: pkce.verifier, clientID: basic.id, headers: basicHeader(basic.id, "wrong")
            )
            try expectOAuthError(wrong, .unauthorized, "invalid_client")
            #expect(wrong.headers[.wwwAuthenticate]?.hasPrefix("Basic realm=") == true)
            let asPost = try await client.postForm(
                "/token",
                [
                    ("grant_type", "authorization_code"), ("code", code), ("code_verifier", pkce.verifier),
                    ("client_id", basic.id), ("client_secret", secret),
                ])
            try expectOAuthError(asPost, .unauthorized, "invalid_client")
            let anonymous = try await client.postForm("/token", [("grant_type", "authorization_code"), ("code", code)])
            try expectOAuthError(anonymous, .unauthorized, "invalid_client")
            let unknown = try await exchange(client, code: code, verifier: pkce.verifier, clientID: "nobody")
            try expectOAuthError(unknown, .unauthorized, "invalid_client")
            let ok = try await exchange(
                client, code: code, verifier: pkce.verifier, clientID: basic.id, headers: basicHeader(basic.id, secret))
            #expect(ok.status == .ok)

            let publicClient = try await client.registerClient()
            let withSecret = try await client.postForm(
                "/token",
                [
                    ("grant_type", "refresh_token"), ("refresh_token", "x"), ("client_id", publicClient.id),
                    ("client_secret", "guess"),
                ])
            try expectOAuthError(withSecret, .unauthorized, "invalid_client")
        }
    }

    @Test func malformedTokenRequests() async throws {
        let app = try await App()
        try await app.run { client in
            let registered = try await client.registerClient()
            try expectOAuthError(
                try await client.postForm("/token", [("client_id", registered.id)]), .badRequest, "invalid_request")
            try expectOAuthError(
                try await client.postForm("/token", [("client_id", registered.id), ("grant_type", "password")]),
                .badRequest, "unsupported_grant_type")
            try expectOAuthError(
                try await client.postForm(
                    "/token", [("client_id", registered.id), ("grant_type", "client_credentials")]), .badRequest,
                "unauthorized_client")
            // Identity assertions are not accepted unless IDENTITY_ASSERTION_ISSUERS names trusted issuers.
            try expectOAuthError(
                try await client.postForm(
                    "/token",
                    [("client_id", registered.id), ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer")]),
                .badRequest, "unsupported_grant_type")
            try expectOAuthError(
                try await client.postForm(
                    "/token",
                    [("client_id", registered.id), ("grant_type", "refresh_token"), ("grant_type", "refresh_token")]),
                .badRequest, "invalid_request")
            try expectOAuthError(
                try await client.postJSON("/token", #"{"grant_type":"refresh_token"}"#), .badRequest,
                "invalid_request")
        }
    }

    @Test func refreshTokensRotate() async throws {
        let app = try await App()
        try await app.run { client in
            let tokens = try await client.signIn(app: app)
            func refresh(_ token: String, scope: String? = nil) async throws -> TestResponse {
                var fields = [
                    ("grant_type", "refresh_token"), ("refresh_token", token), ("client_id", tokens.clientID),
                ]
                if let scope { fields.append(("scope", scope)) }
                return try await client.postForm("/token", fields)
            }
            let r0 = try #require(tokens.refreshToken)
            let first = try jsonObject(try await refresh(r0))
            let r1 = try #require(first["refresh_token"]?.stringValue)
            #expect(r1 != r0)
            // The response was lost: r0 still works while r1 is unused, and replaces r1 with r2.
            let retry = try jsonObject(try await refresh(r0))
            let r2 = try #require(retry["refresh_token"]?.stringValue)
            // Narrowing is allowed; widening is not.
            let narrowed = try jsonObject(try await refresh(r2, scope: "read:todos"))
            #expect(narrowed["scope"] == "read:todos")
            let r3 = try #require(narrowed["refresh_token"]?.stringValue)
            try expectOAuthError(try await refresh(r3, scope: "read:todos admin"), .badRequest, "invalid_scope")
            // r0 is now older than the previous token: presenting it revokes the grant, r3 included.
            try expectOAuthError(try await refresh(r0), .badRequest, "invalid_grant")
            try expectOAuthError(try await refresh(r3), .badRequest, "invalid_grant")
            #expect(try await mcpStatus(client, try #require(narrowed["access_token"]?.stringValue)) == .unauthorized)
        }
    }

    @Test func anotherClientCannotUseARefreshToken() async throws {
        let app = try await App()
        try await app.run { client in
            let tokens = try await client.signIn(app: app)
            let thief = try await client.registerClient()
            let stolen = try await client.postForm(
                "/token",
                [
                    ("grant_type", "refresh_token"), ("refresh_token", try #require(tokens.refreshToken)),
                    ("client_id", thief.id),
                ])
            try expectOAuthError(stolen, .badRequest, "invalid_grant")
        }
    }

    @Test func revocation() async throws {
        let app = try await App()
        try await app.run { client in
            let alice = try await client.signIn(app: app)
            let other = try await client.signIn(app: app)
            #expect(
                try await client.postForm("/revoke", [("token", "mcpgw_at_unknown"), ("client_id", alice.clientID)])
                    .status == .ok)
            // Another client's token: the same 200, and nothing is revoked.
            #expect(
                try await client.postForm("/revoke", [("token", other.accessToken), ("client_id", alice.clientID)])
                    .status == .ok)
            #expect(try await mcpStatus(client, other.accessToken) != .unauthorized)
            // An access token: only it.
            #expect(
                try await client.postForm("/revoke", [("token", alice.accessToken), ("client_id", alice.clientID)])
                    .status == .ok)
            #expect(try await mcpStatus(client, alice.accessToken) == .unauthorized)
            // A refresh token: the whole grant.
            let renewed = try jsonObject(
                try await client.postForm(
                    "/token",
                    [
                        ("grant_type", "refresh_token"), ("refresh_token", try #require(alice.refreshToken)),
                        ("client_id", alice.clientID),
                    ]))
            let renewedAccess = try #require(renewed["access_token"]?.stringValue)
            let renewedRefresh = try #require(renewed["refresh_token"]?.stringValue)
            #expect(
                try await client.postForm(
                    "/revoke",
                    [("token", renewedRefresh), ("client_id", alice.clientID), ("token_type_hint", "refresh_token")]
                ).status == .ok)
            #expect(try await mcpStatus(client, renewedAccess) == .unauthorized)
            try expectOAuthError(
                try await client.postForm("/revoke", [("token", "x")]), .unauthorized, "invalid_client")
            try expectOAuthError(
                try await client.postForm("/revoke", [("client_id", alice.clientID)]), .badRequest, "invalid_request")
        }
    }
}
