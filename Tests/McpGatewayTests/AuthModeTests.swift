import Foundation
import HTTPTypes
import HummingbirdTesting
import JSON
import JWTAuth
import NIOCore
import TestSupport
import Testing

@testable import McpGateway

/// `AUTH_MODE=external` and `AUTH_MODE=access`: what /mcp accepts and refuses, what the discovery documents say, and
/// which credential the tools present to TodosAPI.
@Suite("Gateway authentication modes")
struct AuthModeTests {
    typealias App = GatewayTestApp
    static let external = ["AUTH_MODE": "external", "AUTH0_DOMAIN": "", "OIDC_ISSUER": FakeProvider.issuer]
    static let access = [
        "AUTH_MODE": "access", "TEAM_DOMAIN": FakeProvider.accessTeam, "POLICY_AUD": "gateway-aud",
        "ACCESS_SCOPES": "read:todos",
    ]
    static let ping = #"{"jsonrpc":"2.0","id":1,"method":"ping"}"#

    func claims(_ app: App, _ extra: [String: JSONValue] = [:]) -> [String: JSONValue] {
        let now = Int64(app.clock.now.timeIntervalSince1970)
        var claims: [String: JSONValue] = [
            "iss": .string(FakeProvider.issuer), "aud": "http://localhost:8788/mcp", "sub": "auth0|carol",
            "email": "carol@example.com", "azp": "claude", "scope": "read:todos offline_access",
            "iat": .integer(now), "exp": .integer(now + 600),
        ]
        claims.merge(extra) { _, new in new }
        return claims
    }

    func assertion(_ app: App, _ extra: [String: JSONValue] = [:]) -> [String: JSONValue] {
        let now = Int64(app.clock.now.timeIntervalSince1970)
        var claims: [String: JSONValue] = [
            "iss": .string(FakeProvider.accessTeam), "aud": ["gateway-aud"],
            "sub": "7335d417-61da-459d-899c-0a01c76a2f94",
            "email": "dave@example.com", "type": "app", "identity_nonce": "6ei69kawdKzMIAPF",
            "iat": .integer(now), "exp": .integer(now + 600),
        ]
        claims.merge(extra) { _, new in new }
        return claims
    }

    // MARK: external

    @Test func externalModeNamesTheExternalServerAndServesNoOAuthEndpoints() async throws {
        let app = try await App(environment: Self.external)
        try await app.run { client in
            let metadata = try jsonObject(
                try await client.execute(uri: "/.well-known/oauth-protected-resource/mcp", method: .get))
            #expect(metadata["authorization_servers"] == [.string(FakeProvider.issuer)])
            #expect(metadata["resource"] == "http://localhost:8788/mcp")
            for (path, method) in [
                ("/.well-known/oauth-authorization-server", HTTPRequest.Method.get), ("/authorize", .get),
                ("/callback", .get), ("/token", .post), ("/register", .post), ("/revoke", .post),
            ] {
                let response = try await client.execute(uri: path, method: method)
                #expect(response.status == .notFound, "\(path)")
            }
        }
    }

    @Test func externalTokensForTheResourceAreAccepted() async throws {
        let app = try await App(environment: Self.external)
        try await app.run { client in
            let token = try app.provider.sign(claims(app))
            let session = try await client.initialize(token)
            let whoami = try await client.callTool(token, session: session, "whoami")
            let me = try #require(whoami.result?["structuredContent"]?.objectValue)
            #expect(me["sub"] == "auth0|carol")
            #expect(me["email"] == "carol@example.com")
            #expect(me["client_id"] == "claude")
            #expect(me["scopes"] == ["offline_access", "read:todos"])
            // The scopes of the token gate the tools, with a step-up challenge as in the default mode.
            let billing = try await client.callTool(token, session: session, "list-billing")
            #expect(billing.status == .forbidden)
            #expect(billing.response.headers[.wwwAuthenticate]?.contains(#"error="insufficient_scope""#) == true)
            // A token for the legacy SSE URL is a token for this gateway too.
            let sse = try app.provider.sign(claims(app, ["aud": "http://localhost:8788/sse"]))
            #expect(try await client.mcp(sse, session: session, Self.ping).status == .ok)
        }
    }

    @Test(
        arguments: [
            (["aud": "urn:todos-api"], "audience"), (["iss": "https://other.example/"], "issuer"),
            (["exp": 1_000], "expired"), (["sub": .null], "subject"),
        ] as [([String: JSONValue], String)])
    func externalTokensThatAreNotForTheGatewayAreRefused(change: [String: JSONValue], word: String) async throws {
        let app = try await App(environment: Self.external)
        try await app.run { client in
            var claims = claims(app, change)
            if change["sub"] == .null { claims.removeValue(forKey: "sub") }
            let reply = try await client.mcp(try app.provider.sign(claims), Self.ping)
            #expect(reply.status == .unauthorized)
            let challenge = try #require(reply.response.headers[.wwwAuthenticate])
            #expect(challenge.contains(#"error="invalid_token""#))
            #expect(challenge.lowercased().contains(word))
            #expect(
                challenge.hasSuffix(
                    #"resource_metadata="http://localhost:8788/.well-known/oauth-protected-resource/mcp""#))
        }
    }

    @Test func externalTokensBoundToAKeyAreRefused() async throws {
        let app = try await App(environment: Self.external)
        try await app.run { client in
            let token = try app.provider.sign(
                claims(app, ["cnf": ["jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"]]))
            let reply = try await client.mcp(token, Self.ping)
            #expect(reply.status == .unauthorized)
            #expect(reply.response.headers[.wwwAuthenticate]?.contains(#"error="invalid_token""#) == true)
        }
    }

    // MARK: access

    @Test func accessModeTakesTheIdentityFromTheAssertion() async throws {
        let app = try await App(environment: Self.access)
        try await app.run { client in
            let jwt = try app.provider.sign(assertion(app))
            let headers: HTTPFields = [HTTPField.Name("Cf-Access-Jwt-Assertion")!: jwt]
            let initialize = try await client.mcp(
                nil,
                #"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"playground","version":"1"}}}"#,
                extra: headers)
            #expect(initialize.status == .ok)
            let session = try #require(initialize.response.headers[HTTPField.Name("Mcp-Session-Id")!])
            let whoami = try await client.mcp(
                nil, session: session,
                #"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"whoami","arguments":{}}}"#,
                extra: headers)
            let me = try #require(whoami.result?["structuredContent"]?.objectValue)
            #expect(me["sub"] == "7335d417-61da-459d-899c-0a01c76a2f94")
            #expect(me["email"] == "dave@example.com")
            #expect(me["scopes"] == ["read:todos"])
            // Behind Access there is nothing to step up to: a tool beyond ACCESS_SCOPES is a tool error.
            let billing = try await client.mcp(
                nil, session: session,
                #"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"list-billing","arguments":{}}}"#,
                extra: headers)
            #expect(billing.status == .ok)
            #expect(billing.result?["isError"] == true)
            // No OAuth discovery in this mode.
            let metadata = try await client.execute(uri: "/.well-known/oauth-protected-resource/mcp", method: .get)
            #expect(metadata.status == .notFound)
        }
    }

    @Test func aMissingAssertionIs401AndAnInvalidOneIs403() async throws {
        let app = try await App(environment: Self.access)
        try await app.run { client in
            let missing = try await client.mcp(nil, Self.ping)
            #expect(missing.status == .unauthorized)
            #expect(missing.response.headers[.wwwAuthenticate] == nil)
            let now = Int64(app.clock.now.timeIntervalSince1970)
            let invalid: [String] = [
                try app.provider.sign(assertion(app, ["aud": ["another-app"]])),
                try app.provider.sign(assertion(app, ["iss": "https://evil.cloudflareaccess.com"])),
                try app.provider.sign(assertion(app, ["exp": .integer(now - 3600)])),
                try await RSASigningKey.generate().sign(assertion(app)),
                "not-a-jwt",
            ]
            for jwt in invalid {
                let reply = try await client.mcp(
                    nil, Self.ping, extra: [HTTPField.Name("Cf-Access-Jwt-Assertion")!: jwt])
                #expect(reply.status == .forbidden)
                #expect(try jsonObject(reply.response)["error"] == "forbidden")
            }
            // A bearer token is no substitute for the assertion.
            let bearer = try await client.mcp(try app.provider.sign(assertion(app)), Self.ping)
            #expect(bearer.status == .unauthorized)
        }
    }
}
