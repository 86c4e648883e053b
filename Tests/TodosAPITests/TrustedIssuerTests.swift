import Foundation
import HTTPTypes
import HummingbirdTesting
import JSON
import JWTAuth
import ServiceSupport
import Testing

@testable import TodosAPI

/// TodosAPI trusting two issuers, the identity provider and the MCP gateway (`GATEWAY_ISSUER`), each with its own keys
/// and audience, and nothing else.
@Suite("TodosAPI trusted issuers")
struct TrustedIssuerTests {
    @Test func bothTheProvidersAndTheGatewaysTokensAreAccepted() async throws {
        let app = try await TestApp(trustsGateway: true)
        try await app.run { client in
            let minted = try await client.execute(
                uri: "/api/me", method: .get, headers: bearer(try app.gatewayToken("bob")))
            #expect(minted.status == .ok)
            #expect(try body(minted)["iss"] == .string(TestApp.gatewayIssuer))
            let provider = try await client.execute(uri: "/api/me", method: .get, headers: bearer(try app.token()))
            #expect(provider.status == .ok)
            // The gateway's token carries only read:todos: writing is refused with the scope named.
            let write = try await client.execute(
                uri: "/api/todos", method: .post, headers: .bearerJSON(try app.gatewayToken()),
                body: json(#"{"title":"t"}"#))
            try expectError(
                write, status: .forbidden, code: "insufficient_scope",
                challenge:
                    #"Bearer realm="todos-api", error="insufficient_scope", error_description="The access token lacks the scope write:todos", scope="write:todos""#
            )
            // A todo written with the gateway's token belongs to the same user as with the provider's.
            let created = try await client.execute(
                uri: "/api/todos", method: .post, headers: .bearerJSON(try app.gatewayToken(scope: "write:todos")),
                body: json(#"{"title":"via the gateway"}"#))
            #expect(created.status == .created)
            let listed = try await client.execute(uri: "/api/todos", method: .get, headers: bearer(try app.token()))
            let titles = try body(listed)["todos"]?.arrayValue?.compactMap { $0.objectValue?["title"]?.stringValue }
            #expect(titles?.contains("via the gateway") == true)
        }
    }

    /// The same `sub` from two issuers is two people: the gateway's users from another authorization server (its
    /// `sub_id` names that server), or a gateway token that names no issuer, never see the provider user's todos.
    @Test func theSameSubjectOfAnotherIssuerIsAnotherOwner() async throws {
        let app = try await TestApp(trustsGateway: true)
        try await app.run { client in
            let providerUser = try await client.execute(
                uri: "/api/todos", method: .post, headers: .bearerJSON(try app.token(scope: "write:todos read:todos")),
                body: json(#"{"title":"the provider's alice"}"#))
            #expect(providerUser.status == .created)
            let providerTodo = try #require(try body(providerUser)["todo"]?.objectValue?["id"]?.stringValue)
            let cases: [(String, String)] = [
                ("an external authorization server", try app.gatewayToken(
                    scope: "read:todos write:todos", subjectIssuer: "https://other-as.example.com")),
                ("no sub_id", try app.gatewayToken(scope: "read:todos write:todos", changes: ["sub_id": .null])),
                ("a sub_id of another subject", try app.gatewayToken(
                    scope: "read:todos write:todos",
                    changes: ["sub_id": ["format": "iss_sub", "iss": .string(TestApp.issuer), "sub": "auth0|bob"]])),
                ("another sub_id format", try app.gatewayToken(
                    scope: "read:todos write:todos",
                    changes: ["sub_id": ["format": "email", "email": "alice@example.com"]])),
            ]
            for (name, token) in cases {
                let listed = try await client.execute(uri: "/api/todos", method: .get, headers: bearer(token))
                #expect(listed.status == .ok, "\(name)")
                let todos = try body(listed)["todos"]?.arrayValue ?? []
                // A first-time owner of its own, with the sample todos only, under the same `sub` string.
                #expect(!todos.contains { $0.objectValue?["title"] == "the provider's alice" }, "\(name)")
                #expect(todos.allSatisfy { $0.objectValue?["owner"] == "auth0|alice" }, "\(name)")
                let read = try await client.execute(
                    uri: "/api/todos/\(providerTodo)", method: .get, headers: bearer(token))
                #expect(read.status == .notFound, "\(name)")
                let delete = try await client.execute(
                    uri: "/api/todos/\(providerTodo)", method: .delete, headers: bearer(token))
                #expect(delete.status == .notFound, "\(name)")
            }
            let still = try await client.execute(
                uri: "/api/todos/\(providerTodo)", method: .get, headers: bearer(try app.token()))
            #expect(still.status == .ok)
        }
    }

    @Test func tokensOfOtherIssuersAudiencesKeysOrTypesAreRefused() async throws {
        let app = try await TestApp(trustsGateway: true)
        let stranger = try await RSASigningKey.generate()
        let cases: [(String, String)] = [
            // The gateway's token for another API.
            (
                try app.gatewayToken(changes: ["aud": "urn:another-api"]),
                "The access token is not meant for this API (audience)"
            ),
            // An issuer on no list, whatever key signed it.
            (
                try app.gatewayToken(changes: ["iss": "https://evil.example.com"]),
                "The access token's issuer is not one this API trusts"
            ),
            (
                try app.gatewayToken(changes: ["iss": "https://mcp.example.com/"]),
                "The access token's issuer is not one this API trusts"
            ),
            // The gateway's issuer with the provider's key, and the provider's issuer with the gateway's key.
            (try app.gatewayToken(key: app.signingKey), "The access token was signed with an unknown key"),
            (
                try app.gatewayToken(changes: ["iss": .string(TestApp.issuer)]),
                "The access token was signed with an unknown key"
            ),
            (try app.gatewayToken(key: stranger), "The access token was signed with an unknown key"),
            // An ID token or any other JWT of the gateway does not pass for an access token, typed or not.
            (try app.gatewayToken(type: "JWT"), "The access token's type is not accepted"),
            (try app.gatewayToken(type: nil), "The token has no type (typ)"),
            // A DPoP-bound token is no bearer token: TodosAPI checks no proofs.
            (
                try app.gatewayToken(changes: ["cnf": ["jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"]]),
                "DPoP-bound access tokens (cnf) are not accepted here"
            ),
            (
                try app.gatewayToken(changes: ["exp": .integer(Int64(TestApp.now.timeIntervalSince1970) - 120)]),
                "The access token expired"
            ),
        ]
        try await app.run { client in
            for (token, description) in cases {
                let response = try await client.execute(uri: "/api/me", method: .get, headers: bearer(token))
                try expectError(
                    response, status: .unauthorized, code: "invalid_token",
                    challenge: #"Bearer realm="todos-api", error="invalid_token", error_description="\#(description)""#)
            }
        }
    }

    /// With one issuer, the token's key is looked up before its claims: a key of no trusted issuer is the refusal.
    @Test func withoutGatewayIssuerTheGatewaysTokensAreRefused() async throws {
        let app = try await TestApp()
        try await app.run { client in
            let response = try await client.execute(
                uri: "/api/me", method: .get, headers: bearer(try app.gatewayToken()))
            try expectError(
                response, status: .unauthorized, code: "invalid_token",
                challenge:
                    #"Bearer realm="todos-api", error="invalid_token", error_description="The access token was signed with an unknown key""#
            )
        }
    }

    @Test func gatewayIssuerSettings() throws {
        let both = try TodosAPIConfiguration.load(
            from: Settings(environment: [
                "AUTH0_DOMAIN": "acme.us.auth0.com", "AUTH0_AUDIENCE": "urn:todos-api",
                "GATEWAY_ISSUER": "https://mcp.example.com/",
            ]))
        #expect(both.tokens?.issuer == "https://acme.us.auth0.com/")
        #expect(
            both.gateway
                == .init(
                    issuer: "https://mcp.example.com", audiences: ["urn:todos-api"],
                    jwksSource: .url("https://mcp.example.com/.well-known/jwks.json"),
                    acceptedTypes: ["at+jwt", "application/at+jwt"], requiresType: true))
        // The gateway alone (behind Cloudflare Access, say): the provider is not trusted directly.
        let alone = try TodosAPIConfiguration.load(
            from: Settings(environment: [
                "GATEWAY_ISSUER": "http://localhost:8788", "GATEWAY_AUDIENCE": "api://todos",
                "GATEWAY_JWKS_URL": "http://127.0.0.1:8788/.well-known/jwks.json",
            ]))
        #expect(alone.tokens == nil)
        #expect(alone.gateway?.audiences == ["api://todos"])
        #expect(alone.gateway?.jwksSource == .url("http://127.0.0.1:8788/.well-known/jwks.json"))
    }

    @Test(
        arguments: [
            (["AUTH0_DOMAIN": "a.example.com", "GATEWAY_AUDIENCE": "urn:todos-api"], "GATEWAY_ISSUER"),
            (["GATEWAY_JWKS_URL": "https://mcp.example.com/jwks"], "GATEWAY_ISSUER"),
            (["GATEWAY_ISSUER": "mcp.example.com"], "GATEWAY_ISSUER"),
            (["GATEWAY_ISSUER": "http://mcp.example.com"], "GATEWAY_ISSUER"),
            (["GATEWAY_ISSUER": "https://mcp.example.com", "GATEWAY_AUDIENCE": " , "], "GATEWAY_AUDIENCE"),
            (
                ["GATEWAY_ISSUER": "https://mcp.example.com", "GATEWAY_JWKS_URL": "jwks.json"],
                "GATEWAY_JWKS_URL"
            ),
        ] as [([String: String], String)])
    func badGatewaySettingsNameTheVariable(environment: [String: String], variable: String) {
        let error = #expect(throws: ConfigurationError.self) {
            try TodosAPIConfiguration.load(from: Settings(environment: environment))
        }
        #expect(error?.variable == variable)
    }
}
