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

/// Grants that start at `/token`: machine clients (client credentials, with a secret or `private_key_jwt`) and
/// enterprise identity assertions (the JWT-bearer grant with an ID-JAG). Each failure branch with its error code.
@Suite("Machine clients and identity assertions")
struct MachineClientTests {
    typealias App = GatewayTestApp
    static let issuerEnvironment = ["IDENTITY_ASSERTION_ISSUERS": FakeProvider.issuer]
    static let clientKey = Task { try await RSASigningKey.generate() }

    /// Registers a client as `admin add-client` does; returns its secret.
    @discardableResult
    func addClient(
        _ app: App, id: String, method: RegisteredClient.AuthMethod = .clientSecretBasic,
        grant: String = "client_credentials", scope: ScopeSet = ["read:todos"], jwks: String? = nil
    ) async throws -> String {
        let secret = "secret-of-" + id
        try await app.storage.clients.insert(
            client: RegisteredClient(
                id: id, secretDigest: method == .privateKeyJWT ? nil : SecretDigest.hex(secret), authMethod: method,
                name: id, uri: nil, logoURI: nil, redirectURIs: [], grantTypes: [grant], createdAt: app.clock.now,
                jwks: jwks, scope: scope))
        return secret
    }

    func basic(_ id: String, _ secret: String) -> HTTPFields {
        [.authorization: "Basic " + Data("\(id):\(secret)".utf8).base64EncodedString()]
    }

    @Test func aMachineClientGetsATokenThatActsForNoUser() async throws {
        let app = try await App()
        let secret = try await addClient(app, id: "robot", scope: ["read:todos", "write:todos"])
        try await app.run { client in
            let response = try await client.postForm(
                "/token", [("grant_type", "client_credentials"), ("scope", "read:todos")],
                headers: basic("robot", secret))
            #expect(response.status == .ok)
            #expect(response.headers[.cacheControl] == "no-store")
            let body = try jsonObject(response)
            #expect(body["scope"] == "read:todos")
            #expect(body["refresh_token"] == nil)
            let token = try #require(body["access_token"]?.stringValue)
            let session = try await client.initialize(token)
            let me = try await client.callTool(token, session: session, "whoami")
            let identity = try #require(me.result?["structuredContent"]?.objectValue)
            #expect(identity["sub"] == "robot" && identity["machine_client"] == true)
            let todos = try await client.callTool(token, session: session, "list-todos")
            #expect(todos.result?["isError"] == true)
            let text = todos.result?["content"]?.arrayValue?.first?.objectValue?["text"]?.stringValue ?? ""
            #expect(text.contains("machine client"))
            // All it may have when it asks for nothing; never more.
            let all = try await client.postForm(
                "/token", [("grant_type", "client_credentials")], headers: basic("robot", secret))
            #expect(try jsonObject(all)["scope"] == "read:todos write:todos")
            try expectOAuthError(
                try await client.postForm(
                    "/token", [("grant_type", "client_credentials"), ("scope", "read:billing")],
                    headers: basic("robot", secret)), .badRequest, "invalid_scope")
            try expectOAuthError(
                try await client.postForm(
                    "/token", [("grant_type", "client_credentials")], headers: basic("robot", "wrong")),
                .unauthorized, "invalid_client")
        }
    }

    @Test func clientsOfOtherGrantsMayNotUseClientCredentials() async throws {
        let app = try await App(environment: Self.issuerEnvironment)
        let secret = try await addClient(app, id: "agent", grant: GrantType.jwtBearer)
        try await app.run { client in
            try expectOAuthError(
                try await client.postForm(
                    "/token", [("grant_type", "client_credentials")], headers: basic("agent", secret)),
                .badRequest, "unauthorized_client")
            // And a registered client of the code flow may not either.
            let registered = try await client.registerClient(authMethod: "client_secret_basic")
            try expectOAuthError(
                try await client.postForm(
                    "/token", [("grant_type", "client_credentials")],
                    headers: basic(registered.id, try #require(registered.secret))), .badRequest, "unauthorized_client")
        }
    }

    func clientAssertion(
        _ app: App, key: RSASigningKey, id: String = "signer", changes: [String: JSONValue] = [:]
    ) throws -> String {
        let now = Int64(app.clock.now.timeIntervalSince1970)
        var claims: [String: JSONValue] = [
            "iss": .string(id), "sub": .string(id), "aud": .string(App.publicURL), "iat": .integer(now),
            "exp": .integer(now + 60), "jti": .string(UUID().uuidString),
        ]
        for (name, value) in changes {
            if value == .null { claims.removeValue(forKey: name) } else { claims[name] = value }
        }
        return try key.sign(claims)
    }

    func assertionForm(_ assertion: String, extra: [(String, String)] = []) -> [(String, String)] {
        [
            ("grant_type", "client_credentials"),
            ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
            ("client_assertion", assertion),
        ] + extra
    }

    @Test func privateKeyJWTClientsAuthenticateWithOneTimeAssertions() async throws {
        let app = try await App()
        let key = try await Self.clientKey.value
        let jwks = String(decoding: JSONValue.object(["keys": [.object(key.publicJWK)]]).serialized(), as: UTF8.self)
        try await addClient(app, id: "signer", method: .privateKeyJWT, jwks: jwks)
        let stranger = try await RSASigningKey.generate()
        try await app.run { client in
            let assertion = try clientAssertion(app, key: key)
            let issued = try await client.postForm("/token", assertionForm(assertion))
            #expect(issued.status == .ok)
            // The token endpoint is an accepted audience too.
            let toEndpoint = try clientAssertion(app, key: key, changes: ["aud": .string(App.publicURL + "/token")])
            #expect(try await client.postForm("/token", assertionForm(toEndpoint)).status == .ok)
            let now = Int64(app.clock.now.timeIntervalSince1970)
            let refused: [(String, [(String, String)])] = [
                ("replayed", assertionForm(assertion)),
                ("another key", assertionForm(try clientAssertion(app, key: stranger))),
                ("wrong audience", assertionForm(try clientAssertion(app, key: key, changes: ["aud": "https://x"]))),
                ("expired", assertionForm(try clientAssertion(app, key: key, changes: ["exp": .integer(now - 120)]))),
                (
                    "long-lived",
                    assertionForm(try clientAssertion(app, key: key, changes: ["exp": .integer(now + 3600)]))
                ),
                ("no jti", assertionForm(try clientAssertion(app, key: key, changes: ["jti": .null]))),
                ("iss is not sub", assertionForm(try clientAssertion(app, key: key, changes: ["iss": "other"]))),
                (
                    "several audiences",
                    assertionForm(
                        try clientAssertion(
                            app, key: key, changes: ["aud": [.string(App.publicURL), "https://elsewhere.example"]]))
                ),
                ("unknown client", assertionForm(try clientAssertion(app, key: key, id: "nobody"))),
                ("not a JWT", assertionForm("not-a-jwt")),
                (
                    "client_id mismatch",
                    assertionForm(try clientAssertion(app, key: key), extra: [("client_id", "robot")])
                ),
                (
                    "unknown assertion type",
                    [
                        ("grant_type", "client_credentials"), ("client_assertion_type", "urn:x"),
                        ("client_assertion", try clientAssertion(app, key: key)),
                    ]
                ),
            ]
            for (name, form) in refused {
                let response = try await client.postForm("/token", form)
                #expect(response.status == .unauthorized, "\(name)")
                #expect(try jsonObject(response)["error"] == "invalid_client", "\(name)")
            }
            // Two methods at once is a malformed request.
            try expectOAuthError(
                try await client.postForm(
                    "/token", assertionForm(try clientAssertion(app, key: key)), headers: basic("signer", "x")),
                .badRequest, "invalid_request")
            // A private_key_jwt client has no secret to send.
            try expectOAuthError(
                try await client.postForm(
                    "/token", [("grant_type", "client_credentials")], headers: basic("signer", "guess")),
                .unauthorized, "invalid_client")
        }
    }

    func identityAssertion(_ app: App, changes: [String: JSONValue] = [:], type: String? = "oauth-id-jag+jwt")
        throws -> String
    {
        let now = Int64(app.clock.now.timeIntervalSince1970)
        var claims: [String: JSONValue] = [
            "iss": .string(FakeProvider.issuer), "sub": "okta|dana", "aud": .string(App.publicURL),
            "client_id": "agent", "resource": .string(App.publicURL + "/mcp"), "jti": .string(UUID().uuidString),
            "iat": .integer(now), "exp": .integer(now + 300), "email": "dana@example.com", "name": "Dana",
            "scope": "read:todos write:todos",
        ]
        for (name, value) in changes {
            if value == .null { claims.removeValue(forKey: name) } else { claims[name] = value }
        }
        return try app.provider.sign(claims, type: type)
    }

    func jwtBearer(_ assertion: String, scope: String? = nil) -> [(String, String)] {
        [("grant_type", GrantType.jwtBearer), ("assertion", assertion)] + (scope.map { [("scope", $0)] } ?? [])
    }

    @Test func anIdentityAssertionGrantsTheUserItNames() async throws {
        let app = try await App(environment: Self.issuerEnvironment)
        let secret = try await addClient(
            app, id: "agent", grant: GrantType.jwtBearer, scope: ["read:todos", "write:todos", "read:billing"])
        try await app.run { client in
            let metadata = try jsonObject(
                try await client.execute(uri: "/.well-known/oauth-authorization-server", method: .get))
            #expect(metadata["grant_types_supported"]?.arrayValue?.contains(.string(GrantType.jwtBearer)) == true)
            let response = try await client.postForm(
                "/token", jwtBearer(try identityAssertion(app)), headers: basic("agent", secret))
            #expect(response.status == .ok)
            let body = try jsonObject(response)
            // The client may have read:billing, but the enterprise granted only these two.
            #expect(body["scope"] == "read:todos write:todos")
            #expect(body["refresh_token"] == nil)
            let token = try #require(body["access_token"]?.stringValue)
            let session = try await client.initialize(token)
            let me = try #require(
                try await client.callTool(token, session: session, "whoami").result?["structuredContent"]?.objectValue)
            #expect(me["sub"] == "okta|dana" && me["email"] == "dana@example.com" && me["client_id"] == "agent")
            #expect(me["machine_client"] == false)
        }
    }

    @Test func hostileIdentityAssertionsAreInvalidGrant() async throws {
        let app = try await App(environment: Self.issuerEnvironment)
        let secret = try await addClient(app, id: "agent", grant: GrantType.jwtBearer)
        let stranger = try await RSASigningKey.generate()
        try await app.run { client in
            let valid = try identityAssertion(app)
            #expect(
                try await client.postForm("/token", jwtBearer(valid), headers: basic("agent", secret)).status == .ok)
            let now = Int64(app.clock.now.timeIntervalSince1970)
            let cases: [(String, String)] = [
                ("replayed", valid),
                ("wrong audience", try identityAssertion(app, changes: ["aud": "https://other.example"])),
                ("another client", try identityAssertion(app, changes: ["client_id": "someone-else"])),
                ("another resource", try identityAssertion(app, changes: ["resource": "https://other.example/mcp"])),
                ("no resource", try identityAssertion(app, changes: ["resource": .null])),
                ("no type", try identityAssertion(app, type: nil)),
                ("wrong type", try identityAssertion(app, type: "JWT")),
                ("expired", try identityAssertion(app, changes: ["exp": .integer(now - 120)])),
                ("long-lived", try identityAssertion(app, changes: ["exp": .integer(now + 7200)])),
                ("no jti", try identityAssertion(app, changes: ["jti": .null])),
                ("untrusted issuer", try identityAssertion(app, changes: ["iss": "https://evil.example"])),
                (
                    "forged",
                    try stranger.sign(
                        UnverifiedClaims.read(try identityAssertion(app)),
                        type: "oauth-id-jag+jwt", extraHeader: ["kid": .string(app.provider.key.keyID)])
                ),
                ("not a JWT", "garbage"),
            ]
            for (name, assertion) in cases {
                let response = try await client.postForm(
                    "/token", jwtBearer(assertion), headers: basic("agent", secret))
                #expect(response.status == .badRequest, "\(name)")
                #expect(try jsonObject(response)["error"] == "invalid_grant", "\(name)")
                #expect(response.headers[.cacheControl] == "no-store", "\(name)")
            }
            try expectOAuthError(
                try await client.postForm(
                    "/token", jwtBearer(try identityAssertion(app), scope: "read:billing"),
                    headers: basic("agent", secret)), .badRequest, "invalid_scope")
            try expectOAuthError(
                try await client.postForm(
                    "/token", [("grant_type", GrantType.jwtBearer)], headers: basic("agent", secret)),
                .badRequest, "invalid_request")
        }
    }

    @Test func registrationRefusesWhatOnlyTheOperatorRegisters() async throws {
        let app = try await App()
        try await app.run { client in
            for body in [
                #"{"redirect_uris":["https://a.example/cb"],"grant_types":["client_credentials"]}"#,
                #"{"redirect_uris":["https://a.example/cb"],"grant_types":["authorization_code","urn:ietf:params:oauth:grant-type:jwt-bearer"]}"#,
                #"{"redirect_uris":["https://a.example/cb"],"token_endpoint_auth_method":"private_key_jwt"}"#,
            ] {
                let response = try await client.postJSON("/register", body)
                #expect(response.status == .badRequest)
                #expect(try jsonObject(response)["error"] == "invalid_client_metadata")
            }
        }
    }
}
