import Foundation
import HTTPTypes
import HummingbirdTesting
import JSON
import JWTAuth
import NIOCore
import ServiceSupport
import Testing

@testable import DevIdP

@Suite("DevIdP registration and userinfo")
struct RegistrationAndUserInfoTests {
    typealias App = DevIdPTestApp

    func register(_ client: any TestClientProtocol, _ body: String) async throws -> TestResponse {
        try await client.execute(
            uri: "/oidc/register", method: .post, headers: [.contentType: "application/json"],
            body: ByteBuffer(string: body))
    }

    @Test func aRegisteredPublicClientCompletesThePKCEFlow() async throws {
        let app = try await App()
        try await app.run { client in
            let response = try await register(
                client,
                #"{"client_name":"Inspector","redirect_uris":["http://localhost:6274/oauth/callback"],"token_endpoint_auth_method":"none","grant_types":["authorization_code","refresh_token"]}"#
            )
            #expect(response.status == .created)
            let registered = try json(response)
            #expect(registered["client_secret"] == nil)
            #expect(registered["token_endpoint_auth_method"] == "none")
            let clientID = try #require(registered["client_id"]?.stringValue)

            // Without PKCE a public client is refused; loopback redirect URIs may use any port.
            let noPKCE = try await client.execute(
                uri: "/authorize?"
                    + encode([
                        ("client_id", clientID), ("redirect_uri", "http://localhost:6274/oauth/callback"),
                        ("response_type", "code"),
                    ]), method: .get)
            #expect(queryItem("error", of: noPKCE.headers[.location] ?? "") == "invalid_request")

            let pkce = PKCEPair()
            let location = try await client.signIn(query: [
                ("client_id", clientID), ("redirect_uri", "http://localhost:9999/oauth/callback"),
                ("response_type", "code"),
                ("scope", "openid offline_access read:todos"), ("code_challenge", pkce.challenge),
                ("code_challenge_method", "S256"),
            ])
            #expect(location.hasPrefix("http://localhost:9999/oauth/callback?code="))
            let tokens = try await client.postForm(
                "/oauth/token",
                [
                    ("grant_type", "authorization_code"), ("client_id", clientID),
                    ("code", try #require(queryItem("code", of: location))),
                    ("redirect_uri", "http://localhost:9999/oauth/callback"), ("code_verifier", pkce.verifier),
                ])
            #expect(tokens.status == .ok)
            #expect(try json(tokens)["refresh_token"]?.stringValue != nil)
            let withSecret = try await client.postForm(
                "/oauth/token",
                [
                    ("grant_type", "refresh_token"), ("client_id", clientID), ("client_secret", "guess"),
                    ("refresh_token", try #require(try json(tokens)["refresh_token"]?.stringValue)),
                ])
            #expect(withSecret.status == .unauthorized)
        }
    }

    @Test func aConfidentialClientGetsASecretOnce() async throws {
        let app = try await App()
        try await app.run { client in
            let response = try await register(client, #"{"redirect_uris":["https://app.example.com/cb"]}"#)
            #expect(response.status == .created)
            let registered = try json(response)
            #expect(registered["token_endpoint_auth_method"] == "client_secret_basic")
            #expect(registered["client_secret"]?.stringValue?.count ?? 0 >= 43)
            #expect(registered["client_secret_expires_at"] == 0)
        }
    }

    @Test(arguments: [
        (#"{"redirect_uris":["javascript:alert(1)"]}"#, "invalid_redirect_uri"),
        (#"{"redirect_uris":["http://evil.example.com/cb"]}"#, "invalid_redirect_uri"),
        (#"{"redirect_uris":["https://app.example.com/cb#frag"]}"#, "invalid_redirect_uri"),
        (#"{"redirect_uris":["data:text/html,hi"]}"#, "invalid_redirect_uri"),
        (#"{"redirect_uris":[]}"#, "invalid_redirect_uri"),
        (#"{}"#, "invalid_redirect_uri"),
        (#"{"redirect_uris":["https://a.example/cb"],"grant_types":["implicit"]}"#, "invalid_client_metadata"),
        (
            #"{"redirect_uris":["https://a.example/cb"],"token_endpoint_auth_method":"private_key_jwt"}"#,
            "invalid_client_metadata"
        ),
        (#"{"redirect_uris":["https://a.example/cb"],"client_name":7}"#, "invalid_client_metadata"),
        (#"[1,2]"#, "invalid_client_metadata"),
    ])
    func invalidMetadataIsRefused(body: String, error: String) async throws {
        let app = try await App()
        try await app.run { client in
            let response = try await register(client, body)
            #expect(response.status == .badRequest)
            #expect(try json(response)["error"] == .string(error))
        }
    }

    @Test func userinfoShowsTheProfileForTheTokensScopes() async throws {
        let app = try await App()
        try await app.run { client in
            let password = try await client.postForm(
                "/oauth/token",
                [
                    ("grant_type", "password"), ("username", "alice"), ("password", "alice-password"),
                    ("scope", "openid email"),
                ],
                headers: basic(App.machineID, App.machineSecret))
            let token = try #require(try json(password)["access_token"]?.stringValue)
            let info = try await client.execute(
                uri: "/userinfo", method: .get, headers: [.authorization: "Bearer \(token)"])
            #expect(info.status == .ok)
            let claims = try json(info)
            #expect(claims["sub"] == "auth0|alice")
            #expect(claims["email"] == "alice@example.com")
            #expect(claims["name"] == nil)

            let noOpenID = try await client.postForm(
                "/oauth/token",
                [
                    ("grant_type", "password"), ("username", "alice"), ("password", "alice-password"),
                    ("scope", "read:todos"),
                ],
                headers: basic(App.machineID, App.machineSecret))
            let apiOnly = try #require(try json(noOpenID)["access_token"]?.stringValue)
            let refused = try await client.execute(
                uri: "/userinfo", method: .get, headers: [.authorization: "Bearer \(apiOnly)"])
            #expect(refused.status == .unauthorized)
            #expect(refused.headers[.wwwAuthenticate]?.contains(#"error="invalid_token""#) == true)
            let missing = try await client.execute(uri: "/userinfo", method: .get)
            #expect(missing.status == .unauthorized)
        }
    }
}
