import Crypto
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

/// Sender-constrained tokens (RFC 9449) for the gateway's own tokens: a DPoP proof at `/token` binds the access token
/// (and a public client's refresh tokens) to the client's key; `/mcp` then wants `Authorization: DPoP` and a fresh
/// proof of that key for each request.
@Suite("DPoP-bound tokens")
struct DPoPFlowTests {
    typealias App = GatewayTestApp
    static let clientKey = Task { try await RSASigningKey.generate() }
    static let otherKey = Task { try await RSASigningKey.generate() }
    static let dpop = HTTPField.Name("DPoP")!
    static let nonce = HTTPField.Name("DPoP-Nonce")!

    func proof(
        _ app: App, key: RSASigningKey, method: String = "POST", path: String, token: String? = nil,
        nonce: String? = nil
    ) throws -> String {
        var claims: [String: JSONValue] = [
            "jti": .string(UUID().uuidString), "htm": .string(method), "htu": .string(App.publicURL + path),
            "iat": .integer(Int64(app.clock.now.timeIntervalSince1970)),
        ]
        if let token { claims["ath"] = .string(Base64URL.encode(SHA256.hash(data: Data(token.utf8)))) }
        if let nonce { claims["nonce"] = .string(nonce) }
        var jwk = key.publicJWK
        jwk.removeValue(forKey: "kid")
        return try key.sign(claims, type: "dpop+jwt", extraHeader: ["jwk": .object(jwk), "kid": .null])
    }

    /// A public client signed in with a proof of `key` at `/token`: the token response.
    func signIn(_ client: any TestClientProtocol, app: App, key: RSASigningKey, nonce: String? = nil) async throws
        -> (clientID: String, response: TestResponse)
    {
        let registered = try await client.registerClient()
        let pkce = PKCEPair()
        let redirect = try await client.authorize(
            app: app, clientID: registered.id, pkce: pkce, scope: "read:todos offline_access")
        let response = try await client.postForm(
            "/token",
            [
                ("grant_type", "authorization_code"), ("code", try #require(redirect["code"])),
                ("client_id", registered.id), ("redirect_uri", App.redirectURI), ("code_verifier", pkce.verifier),
            ], headers: [Self.dpop: try proof(app, key: key, path: "/token", nonce: nonce)])
        return (registered.id, response)
    }

    func ping(_ client: any TestClientProtocol, _ authorization: String, proof: String?) async throws -> TestResponse {
        var headers: HTTPFields = [
            .authorization: authorization, .contentType: "application/json",
            .accept: "application/json, text/event-stream", HTTPField.Name("MCP-Protocol-Version")!: "2025-11-25",
        ]
        if let proof { headers[Self.dpop] = proof }
        return try await client.execute(
            uri: "/mcp", method: .post, headers: headers,
            body: ByteBuffer(
                string:
                    #"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#
            ))
    }

    @Test func aBoundTokenWorksOnlyWithAProofOfItsKey() async throws {
        let app = try await App()
        let key = try await Self.clientKey.value
        let other = try await Self.otherKey.value
        try await app.run { client in
            let (_, response) = try await signIn(client, app: app, key: key)
            #expect(response.status == .ok)
            // Nonces are not required, so none is handed out (RFC 9449 §11.3).
            #expect(response.headers[Self.nonce] == nil)
            let body = try jsonObject(response)
            #expect(body["token_type"] == "DPoP")
            let token = try #require(body["access_token"]?.stringValue)

            let ok = try await ping(
                client, "DPoP \(token)", proof: try proof(app, key: key, path: "/mcp", token: token))
            #expect(ok.status == .ok)
            let refusals: [(String, String, String?, String)] = [
                ("as a bearer token", "Bearer \(token)", nil, "invalid_token"),
                ("without a proof", "DPoP \(token)", nil, "invalid_dpop_proof"),
                (
                    "another key", "DPoP \(token)", try proof(app, key: other, path: "/mcp", token: token),
                    "invalid_dpop_proof"
                ),
                (
                    "another URL", "DPoP \(token)", try proof(app, key: key, path: "/sse", token: token),
                    "invalid_dpop_proof"
                ),
                (
                    "another method", "DPoP \(token)",
                    try proof(app, key: key, method: "GET", path: "/mcp", token: token), "invalid_dpop_proof"
                ),
                ("no ath", "DPoP \(token)", try proof(app, key: key, path: "/mcp"), "invalid_dpop_proof"),
            ]
            for (name, authorization, proof, code) in refusals {
                let response = try await ping(client, authorization, proof: proof)
                #expect(response.status == .unauthorized, "\(name)")
                #expect(try jsonObject(response)["error"] == .string(code), "\(name)")
                if code == "invalid_dpop_proof" {
                    let challenge = response.headers[.wwwAuthenticate] ?? ""
                    #expect(challenge.hasPrefix(#"DPoP error="invalid_dpop_proof""#), "\(name)")
                    #expect(challenge.contains("algs=") && challenge.contains("RS256"), "\(name)")
                }
            }
            // A proof is used once.
            let once = try proof(app, key: key, path: "/mcp", token: token)
            #expect(try await ping(client, "DPoP \(token)", proof: once).status == .ok)
            let replayed = try await ping(client, "DPoP \(token)", proof: once)
            #expect(replayed.status == .unauthorized)
            #expect(try jsonObject(replayed)["error"] == "invalid_dpop_proof")
        }
    }

    @Test func aPublicClientsRefreshTokensAreBoundToo() async throws {
        let app = try await App()
        let key = try await Self.clientKey.value
        let other = try await Self.otherKey.value
        try await app.run { client in
            let (clientID, response) = try await signIn(client, app: app, key: key)
            let refresh = try #require(try jsonObject(response)["refresh_token"]?.stringValue)
            func refreshWith(_ proof: String?) async throws -> TestResponse {
                try await client.postForm(
                    "/token", [("grant_type", "refresh_token"), ("refresh_token", refresh), ("client_id", clientID)],
                    headers: proof.map { [Self.dpop: $0] } ?? [:])
            }
            try expectOAuthError(try await refreshWith(nil), .badRequest, "invalid_dpop_proof")
            try expectOAuthError(
                try await refreshWith(try proof(app, key: other, path: "/token")), .badRequest, "invalid_dpop_proof")
            let renewed = try await refreshWith(try proof(app, key: key, path: "/token"))
            #expect(renewed.status == .ok)
            #expect(try jsonObject(renewed)["token_type"] == "DPoP")
        }
    }

    @Test func aPublicClientThatProvesAKeyAtARefreshBindsItsRefreshTokensFromThen() async throws {
        let app = try await App()
        let key = try await Self.clientKey.value
        try await app.run { client in
            let tokens = try await client.signIn(app: app, scope: "read:todos offline_access")
            let refresh = try #require(tokens.refreshToken)
            let bound = try await client.postForm(
                "/token",
                [("grant_type", "refresh_token"), ("refresh_token", refresh), ("client_id", tokens.clientID)],
                headers: [Self.dpop: try proof(app, key: key, path: "/token")])
            #expect(try jsonObject(bound)["token_type"] == "DPoP")
            let next = try #require(try jsonObject(bound)["refresh_token"]?.stringValue)
            try expectOAuthError(
                try await client.postForm(
                    "/token",
                    [("grant_type", "refresh_token"), ("refresh_token", next), ("client_id", tokens.clientID)]),
                .badRequest, "invalid_dpop_proof")
        }
    }

    /// A thief who refreshes a stolen (unbound) refresh token first, with a key of their own, must not turn the
    /// victim's replay of the same token into a mere DPoP error: the replay still revokes the grant.
    @Test func aStolenRefreshTokenBoundByTheThiefStillRevokesTheGrantOnReplay() async throws {
        let app = try await App(environment: ["REFRESH_TOKEN_REUSE_INTERVAL": "0"])
        let thief = try await Self.otherKey.value
        try await app.run { client in
            let tokens = try await client.signIn(app: app, scope: "read:todos offline_access")
            let stolen = try #require(tokens.refreshToken)
            func refresh(_ token: String, proof: String?) async throws -> TestResponse {
                try await client.postForm(
                    "/token",
                    [("grant_type", "refresh_token"), ("refresh_token", token), ("client_id", tokens.clientID)],
                    headers: proof.map { [Self.dpop: $0] } ?? [:])
            }
            let taken = try await refresh(stolen, proof: try proof(app, key: thief, path: "/token"))
            #expect(taken.status == .ok)
            let thiefsToken = try #require(try jsonObject(taken)["refresh_token"]?.stringValue)
            // The victim uses the old token after the (zero) grace, without a proof: a replay, which ends the grant.
            app.clock.advance(by: 1)
            try expectOAuthError(try await refresh(stolen, proof: nil), .badRequest, "invalid_grant")
            try expectOAuthError(
                try await refresh(thiefsToken, proof: try proof(app, key: thief, path: "/token")), .badRequest,
                "invalid_grant")
        }
    }

    @Test func aCodeRequestedWithDPoPJKTNeedsAProofOfThatKey() async throws {
        let app = try await App()
        let key = try await Self.clientKey.value
        let other = try await Self.otherKey.value
        try await app.run { client in
            let registered = try await client.registerClient()
            for attempt in [other, nil, key] as [RSASigningKey?] {
                let pkce = PKCEPair()
                let redirect = try await client.authorize(
                    app: app, clientID: registered.id, pkce: pkce, scope: "read:todos",
                    extra: [("dpop_jkt", key.keyID)])
                var headers: HTTPFields = [:]
                if let attempt { headers[Self.dpop] = try proof(app, key: attempt, path: "/token") }
                let response = try await client.postForm(
                    "/token",
                    [
                        ("grant_type", "authorization_code"), ("code", try #require(redirect["code"])),
                        ("client_id", registered.id), ("redirect_uri", App.redirectURI),
                        ("code_verifier", pkce.verifier),
                    ], headers: headers)
                if attempt?.keyID == key.keyID {
                    #expect(response.status == .ok)
                    #expect(try jsonObject(response)["token_type"] == "DPoP")
                } else {
                    try expectOAuthError(response, .badRequest, "invalid_dpop_proof")
                }
            }
        }
    }

    @Test func anUnboundTokenIsNotADPoPToken() async throws {
        let app = try await App()
        let key = try await Self.clientKey.value
        try await app.run { client in
            let tokens = try await client.signIn(app: app)
            let response = try await ping(
                client, "DPoP \(tokens.accessToken)",
                proof: try proof(app, key: key, path: "/mcp", token: tokens.accessToken))
            #expect(response.status == .unauthorized)
            #expect(try jsonObject(response)["error"] == "invalid_token")
            #expect(try await ping(client, "Bearer \(tokens.accessToken)", proof: nil).status == .ok)
        }
    }

    @Test func requiredNoncesAreAskedForAndAccepted() async throws {
        let app = try await App(environment: ["DPOP_NONCE_REQUIRED": "true"])
        let key = try await Self.clientKey.value
        try await app.run { client in
            let (_, first) = try await signIn(client, app: app, key: key)
            try expectOAuthError(first, .badRequest, "use_dpop_nonce")
            let nonce = try #require(first.headers[Self.nonce])
            // A forged nonce is no better than none.
            let (_, forged) = try await signIn(client, app: app, key: key, nonce: "AAAAAAAAAAA")
            try expectOAuthError(forged, .badRequest, "use_dpop_nonce")
            let (_, second) = try await signIn(client, app: app, key: key, nonce: nonce)
            #expect(second.status == .ok)
            let token = try #require(try jsonObject(second)["access_token"]?.stringValue)
            let asked = try await ping(
                client, "DPoP \(token)", proof: try proof(app, key: key, path: "/mcp", token: token))
            #expect(asked.status == .unauthorized)
            #expect(asked.headers[.wwwAuthenticate]?.hasPrefix(#"DPoP error="use_dpop_nonce""#) == true)
            let fresh = try #require(asked.headers[Self.nonce])
            let ok = try await ping(
                client, "DPoP \(token)", proof: try proof(app, key: key, path: "/mcp", token: token, nonce: fresh))
            #expect(ok.status == .ok)
            // Nonces last two windows of five minutes, then are asked for again.
            app.clock.advance(by: 601)
            let stale = try await ping(
                client, "DPoP \(token)", proof: try proof(app, key: key, path: "/mcp", token: token, nonce: fresh))
            #expect(try jsonObject(stale)["error"] == "use_dpop_nonce")
        }
    }

    @Test func theMetadataAdvertisesDPoP() async throws {
        let app = try await App()
        try await app.run { client in
            let server = try jsonObject(
                try await client.execute(uri: "/.well-known/oauth-authorization-server", method: .get))
            #expect(server["dpop_signing_alg_values_supported"]?.arrayValue?.contains("ES256") == true)
            let resource = try jsonObject(
                try await client.execute(uri: "/.well-known/oauth-protected-resource/mcp", method: .get))
            #expect(resource["dpop_bound_access_tokens_required"] == false)
            #expect(resource["dpop_signing_alg_values_supported"]?.arrayValue?.contains("RS256") == true)
        }
    }
}
