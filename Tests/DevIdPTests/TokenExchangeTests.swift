import Foundation
import HTTPTypes
import HummingbirdTesting
import JSON
import JWTAuth
import ServiceSupport
import TestSupport
import Testing

@testable import DevIdP

/// RFC 8693 token exchange at DevIdP's `/oauth/token`: a user's access token for one of the tenant's APIs becomes one
/// for another, never with more scope.
@Suite("DevIdP token exchange")
struct TokenExchangeTests {
    typealias App = DevIdPTestApp
    static let environment = ["AUTH0_AUDIENCE": "urn:sign-in,urn:todos-api"]

    /// alice's access token for `urn:sign-in`, by the password grant.
    func aliceToken(_ client: any TestClientProtocol, scope: String = "openid read:todos read:billing") async throws
        -> String
    {
        let response = try await client.postForm(
            "/oauth/token",
            [
                ("grant_type", "password"), ("username", "alice"), ("password", "alice-password"), ("scope", scope),
                ("audience", "urn:sign-in"),
            ], headers: basic(App.gatewayID, App.gatewaySecret))
        #expect(response.status == .ok)
        return try #require(try json(response)["access_token"]?.stringValue)
    }

    func exchange(_ client: any TestClientProtocol, _ fields: [(String, String)]) async throws -> TestResponse {
        try await client.postForm(
            "/oauth/token", [("grant_type", GrantType.tokenExchange)] + fields,
            headers: basic(App.gatewayID, App.gatewaySecret))
    }

    @Test func anAccessTokenIsExchangedForAnotherAudienceAndNarrowerScope() async throws {
        let app = try await App(environment: Self.environment)
        try await app.run { client in
            let subject = try await aliceToken(client)
            let response = try await exchange(
                client,
                [
                    ("subject_token", subject), ("subject_token_type", TokenExchangeGrant.accessTokenType),
                    ("audience", "urn:todos-api"), ("scope", "read:todos"),
                ])
            #expect(response.status == .ok)
            let body = try json(response)
            #expect(body["issued_token_type"] == .string(TokenExchangeGrant.accessTokenType))
            let token = try await app.verifier().verify(try #require(body["access_token"]?.stringValue))
            #expect(token.subject == "auth0|alice")
            #expect(token.audiences == ["urn:todos-api"])
            #expect(token.scopes == ["read:todos"])
            #expect(token.string("gty") == "token-exchange")
        }
    }

    @Test func badExchangesAreRefusedWithTheirErrorCodes() async throws {
        let app = try await App(environment: Self.environment)
        let stranger = try await RSASigningKey.generate()
        try await app.run { client in
            let subject = try await aliceToken(client, scope: "openid read:todos")
            let type = ("subject_token_type", TokenExchangeGrant.accessTokenType)
            let forged = try stranger.sign([
                "iss": .string(App.issuer), "sub": "auth0|alice", "aud": "urn:sign-in", "scope": "read:todos",
                "exp": .integer(Int64(app.clock.now.timeIntervalSince1970) + 60),
            ])
            let cases: [([(String, String)], HTTPResponse.Status, String)] = [
                ([type], .badRequest, "invalid_request"),
                ([("subject_token", subject)], .badRequest, "invalid_request"),
                ([("subject_token", subject), ("subject_token_type", "urn:x")], .badRequest, "invalid_request"),
                (
                    [
                        ("subject_token", subject), type,
                        ("requested_token_type", "urn:ietf:params:oauth:token-type:id_token"),
                    ],
                    .badRequest, "invalid_request"
                ),
                ([("subject_token", subject), type, ("actor_token", subject)], .badRequest, "invalid_request"),
                ([("subject_token", forged), type], .badRequest, "invalid_grant"),
                ([("subject_token", "not-a-token"), type], .badRequest, "invalid_grant"),
                ([("subject_token", subject), type, ("scope", "read:billing")], .badRequest, "invalid_scope"),
                ([("subject_token", subject), type, ("audience", "urn:elsewhere")], .forbidden, "access_denied"),
            ]
            for (fields, status, code) in cases {
                let response = try await exchange(client, fields)
                #expect(response.status == status, "\(fields.map(\.0))")
                #expect(try json(response)["error"] == .string(code), "\(fields.map(\.0))")
            }
            // A client not allowed the grant is refused before anything else.
            let machine = try await client.postForm(
                "/oauth/token",
                [("grant_type", GrantType.tokenExchange), ("subject_token", subject), type],
                headers: basic(App.machineID, App.machineSecret))
            #expect(machine.status == .badRequest || machine.status == .forbidden)
            #expect(try json(machine)["error"] == "unauthorized_client")
        }
    }
}
