import Foundation
import HTTPTypes
import HummingbirdTesting
import JSON
import JWTAuth
import ServiceSupport
import Testing

@testable import TodosAPI

@Suite("TodosAPI authentication")
struct AuthenticationTests {
    @Test func healthNeedsNoToken() async throws {
        let app = try await TestApp()
        try await app.run { client in
            try await client.execute(uri: "/api/health", method: .get) { response in
                #expect(response.status == .ok)
                let object = try body(response)
                #expect(object["status"] == "ok")
                #expect(object["timestamp"]?.stringValue?.hasPrefix("2025-06-15T") == true)
            }
        }
    }

    @Test func missingTokenIsA401WithoutErrorAttribute() async throws {
        let app = try await TestApp()
        try await app.run { client in
            try await client.execute(uri: "/api/me", method: .get) { response in
                try expectError(
                    response, status: .unauthorized, code: "unauthorized", challenge: #"Bearer realm="todos-api""#)
                #expect(response.headers[.cacheControl] == "no-store")
            }
            try await client.execute(uri: "/api/todos", method: .get, headers: [.authorization: "Basic YTpi"]) {
                response in
                try expectError(
                    response, status: .unauthorized, code: "unauthorized", challenge: #"Bearer realm="todos-api""#)
            }
        }
    }

    @Test func malformedAuthorizationIsA400InvalidRequest() async throws {
        let app = try await TestApp()
        let token = try app.token()
        try await app.run { client in
            for header in ["Bearer \(token) \(token)", "Bearer", "Bearer a, Bearer b"] {
                try await client.execute(uri: "/api/me", method: .get, headers: [.authorization: header]) { response in
                    try expectError(response, status: .badRequest, code: "invalid_request")
                    #expect(
                        response.headers[.wwwAuthenticate]?.hasPrefix(
                            #"Bearer realm="todos-api", error="invalid_request""#) == true)
                }
            }
        }
    }

    @Test func invalidTokensAre401InvalidToken() async throws {
        let app = try await TestApp()
        let other = try await RSASigningKey.generate()
        let expired = try app.token(changes: ["exp": .integer(Int64(TestApp.now.timeIntervalSince1970) - 120)])
        let wrongAudience = try app.token(changes: ["aud": "urn:another-api"])
        let wrongIssuer = try app.token(changes: ["iss": "https://tenant.example.com"])
        let forged = try other.sign(
            [
                "iss": .string(TestApp.issuer), "sub": "x", "aud": .string(TestApp.audience),
                "exp": .integer(Int64(TestApp.now.timeIntervalSince1970) + 60),
            ],
            extraHeader: ["kid": .string(app.signingKey.keyID)])
        let cases: [(String, String)] = [
            (expired, "The access token expired"),
            (wrongAudience, "The access token is not meant for this API (audience)"),
            (wrongIssuer, "The access token was issued by another issuer"),
            (forged, "The access token's signature is invalid"),
            ("not-a-jwt", "The access token does not have three segments"),
        ]
        try await app.run { client in
            for (token, description) in cases {
                try await client.execute(uri: "/api/me", method: .get, headers: bearer(token)) { response in
                    try expectError(
                        response, status: .unauthorized, code: "invalid_token",
                        challenge:
                            #"Bearer realm="todos-api", error="invalid_token", error_description="\#(description)""#)
                }
            }
        }
    }

    @Test func meReturnsTheVerifiedClaims() async throws {
        let app = try await TestApp()
        let token = try app.token(changes: ["https://example.com/roles": ["admin"]])
        try await app.run { client in
            try await client.execute(uri: "/api/me", method: .get, headers: bearer(token)) { response in
                #expect(response.status == .ok)
                #expect(response.headers[.contentType] == "application/json; charset=utf-8")
                let claims = try body(response)
                #expect(claims["sub"] == "auth0|alice")
                #expect(claims["iss"] == .string(TestApp.issuer))
                #expect(claims["https://example.com/roles"] == ["admin"])
            }
        }
    }

    @Test func billingNeedsReadBilling() async throws {
        let app = try await TestApp()
        let alice = try app.token("alice")
        let bob = try app.token("bob")
        try await app.run { client in
            try await client.execute(uri: "/api/billing", method: .get, headers: bearer(alice)) { response in
                #expect(response.status == .ok)
                let billing = try body(response)["billing"]
                #expect(billing == ["method": "credit-card", "last4": "1234", "expiration": "01/2027"])
            }
            try await client.execute(uri: "/api/billing", method: .get, headers: bearer(bob)) { response in
                try expectError(
                    response, status: .forbidden, code: "insufficient_scope",
                    challenge:
                        #"Bearer realm="todos-api", error="insufficient_scope", error_description="The access token lacks the scope read:billing", scope="read:billing""#
                )
            }
        }
    }

    @Test func scopesAreReadFromPermissionsToo() async throws {
        let app = try await TestApp()
        let token = try app.token("bob", scope: "openid", changes: ["permissions": ["read:billing"]])
        try await app.run { client in
            try await client.execute(uri: "/api/billing", method: .get, headers: bearer(token)) { response in
                #expect(response.status == .ok)
            }
        }
    }

    @Test func unknownPathsUnderAPINeedATokenThenAre404() async throws {
        let app = try await TestApp()
        let token = try app.token()
        try await app.run { client in
            try await client.execute(uri: "/api/admin/users", method: .get) { response in
                try expectError(response, status: .unauthorized, code: "unauthorized")
            }
            try await client.execute(uri: "/api/admin/users", method: .delete, headers: bearer(token)) { response in
                try expectError(response, status: .notFound, code: "not_found")
            }
            try await client.execute(uri: "/elsewhere", method: .get) { response in
                try expectError(response, status: .notFound, code: "not_found")
            }
        }
    }

    @Test func wrongMethodIsA405WithAllow() async throws {
        let app = try await TestApp()
        let token = try app.token()
        try await app.run { client in
            try await client.execute(uri: "/api/todos", method: .put, headers: bearer(token)) { response in
                try expectError(response, status: .methodNotAllowed, code: "method_not_allowed")
                #expect(response.headers[.allow] == "GET, POST")
            }
            try await client.execute(uri: "/api/me", method: .post) { response in
                #expect(response.status == .unauthorized)
            }
        }
    }

    @Test func unavailableKeysAreA503NotA500() async throws {
        struct Unavailable: VerificationKeyProvider {
            func key(withID keyID: String) async throws(BearerAuthError) -> VerificationKey { throw .keysUnavailable }
            func containsKey(withID keyID: String) -> Bool { false }
            func keys(for algorithm: SignatureAlgorithm) async throws(BearerAuthError) -> [VerificationKey] {
                throw .keysUnavailable
            }
        }
        let app = try await TestApp(keys: Unavailable())
        let token = try app.token()
        try await app.run { client in
            try await client.execute(uri: "/api/me", method: .get, headers: bearer(token)) { response in
                try expectError(response, status: .serviceUnavailable, code: "temporarily_unavailable")
                #expect(response.headers[.retryAfter] == "5")
            }
        }
    }

    @Test func responsesCarryARequestID() async throws {
        let app = try await TestApp()
        try await app.run { client in
            try await client.execute(uri: "/api/me", method: .get) { response in
                #expect(response.headers[.requestID]?.isEmpty == false)
            }
        }
    }
}
