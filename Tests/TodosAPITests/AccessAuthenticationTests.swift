import Foundation
import HTTPTypes
import HummingbirdTesting
import JSON
import JWTAuth
import NIOCore
import ServiceSupport
import Testing

@testable import TodosAPI

/// TodosAPI behind Cloudflare Access: assertions in `Cf-Access-Jwt-Assertion` (from Access) or `Cf-Access-Token` (a
/// linked app token forwarded by the gateway), with the configured scopes.
@Suite("TodosAPI with Cloudflare Access")
struct AccessAuthenticationTests {
    static let assertion = HTTPField.Name("Cf-Access-Jwt-Assertion")!
    static let linkedAppToken = HTTPField.Name("Cf-Access-Token")!

    @Test func anAssertionIsACallerWithTheConfiguredScopes() async throws {
        let app = try await TestApp(access: ["read:todos"], bearer: false)
        let assertion = try app.assertion("carol")
        try await app.run { client in
            for header in [Self.assertion, Self.linkedAppToken] {
                let todos = try await client.execute(uri: "/api/todos", method: .get, headers: [header: assertion])
                #expect(todos.status == .ok)
                let list = try #require(try body(todos)["todos"]?.arrayValue)
                #expect(!list.isEmpty)
                #expect(list.allSatisfy { $0.objectValue?["owner"] == "access-carol" })
            }
            let me = try body(
                try await client.execute(uri: "/api/me", method: .get, headers: [Self.assertion: assertion]))
            #expect(me["email"] == "carol@example.com")
            // Beyond ACCESS_SCOPES: 403 insufficient_scope, as for a token.
            let billing = try await client.execute(
                uri: "/api/billing", method: .get, headers: [Self.assertion: assertion])
            try expectError(billing, status: .forbidden, code: "insufficient_scope")
            let write = try await client.execute(
                uri: "/api/todos", method: .post,
                headers: [Self.assertion: assertion, .contentType: "application/json"],
                body: ByteBuffer(string: #"{"title":"x"}"#))
            try expectError(write, status: .forbidden, code: "insufficient_scope")
        }
    }

    @Test func aServiceTokensAssertionIsItsCommonName() async throws {
        let app = try await TestApp(access: ["read:todos"], bearer: false)
        let assertion = try app.assertion(changes: ["sub": "", "email": .null, "common_name": "ci.access"])
        try await app.run { client in
            let todos = try await client.execute(uri: "/api/todos", method: .get, headers: [Self.assertion: assertion])
            #expect(try body(todos)["todos"]?.arrayValue?.first?.objectValue?["owner"] == "ci.access")
        }
    }

    @Test func invalidAssertionsAre403() async throws {
        let app = try await TestApp(access: ["read:todos"], bearer: false)
        let now = Int64(TestApp.now.timeIntervalSince1970)
        let invalid = [
            try app.assertion(changes: ["aud": ["the-gateway-aud"]]),
            try app.assertion(changes: ["iss": "https://other.cloudflareaccess.com"]),
            try app.assertion(changes: ["exp": .integer(now - 3600)]),
            try await RSASigningKey.generate().sign(["iss": .string(TestApp.accessTeam)]),
            "garbage",
        ]
        try await app.run { client in
            for assertion in invalid {
                let response = try await client.execute(
                    uri: "/api/todos", method: .get, headers: [Self.assertion: assertion])
                try expectError(response, status: .forbidden, code: "forbidden")
            }
            let missing = try await client.execute(uri: "/api/todos", method: .get)
            try expectError(missing, status: .unauthorized, code: "unauthorized")
            // Without an issuer configured, a bearer token is not a way in.
            let bearerOnly = try await client.execute(
                uri: "/api/todos", method: .get, headers: bearer(try app.token()))
            try expectError(bearerOnly, status: .unauthorized, code: "unauthorized")
        }
    }

    @Test func behindAccessForSaaSTheLinkedAccessTokenIsLeftToAccess() async throws {
        // The gateway signs users in with an Access for SaaS application and sends its access token as a bearer token;
        // Access checks it (Linked App Token policy) and adds its own assertion. TodosAPI, configured for Access only,
        // goes by the assertion and ignores the bearer token it cannot verify.
        let app = try await TestApp(access: ["read:todos"], bearer: false)
        let assertion = try app.assertion("dave")
        try await app.run { client in
            let todos = try await client.execute(
                uri: "/api/todos", method: .get,
                headers: [.authorization: "Bearer opaque-saas-access-token", Self.assertion: assertion])
            #expect(todos.status == .ok)
            #expect(try body(todos)["todos"]?.arrayValue?.first?.objectValue?["owner"] == "access-dave")
        }
    }

    @Test func withBothABearerTokenNamesTheUser() async throws {
        let app = try await TestApp(access: ["read:todos"])
        // Behind Access, the gateway gets in with a service token and names the user with the bearer token.
        let service = try app.assertion(changes: ["sub": "", "email": .null, "common_name": "gateway.access"])
        try await app.run { client in
            let todos = try await client.execute(
                uri: "/api/todos", method: .get, headers: bearer(try app.token("bob")) + [Self.assertion: service])
            #expect(try body(todos)["todos"]?.arrayValue?.first?.objectValue?["owner"] == "auth0|bob")
            // An assertion alone still works, and no credentials at all is the bearer challenge.
            let alone = try await client.execute(uri: "/api/todos", method: .get, headers: [Self.assertion: service])
            #expect(alone.status == .ok)
            let none = try await client.execute(uri: "/api/todos", method: .get)
            try expectError(none, status: .unauthorized, code: "unauthorized", challenge: #"Bearer realm="todos-api""#)
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
