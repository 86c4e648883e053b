import Foundation
import HTTPTypes
import HummingbirdTesting
import JSON
import JWTAuth
import NIOCore
import ServiceSupport
import TestSupport
import Testing

@testable import DevIdP

@Suite("DevIdP /oauth/token")
struct TokenTests {
    typealias App = DevIdPTestApp

    /// Signs `user` in with PKCE and returns the code and the verifier.
    func authorize(
        _ client: any TestClientProtocol, user: String = "alice",
        scope: String = "openid profile email offline_access read:todos read:billing",
        pkce: PKCEPair? = PKCEPair()
    ) async throws -> (code: String, verifier: String?) {
        var query: [(String, String)] = [
            ("client_id", App.gatewayID), ("redirect_uri", App.callback), ("response_type", "code"), ("scope", scope),
            ("state", "s"), ("nonce", "nonce-1"), ("audience", "urn:todos-api"),
        ]
        if let pkce { query += [("code_challenge", pkce.challenge), ("code_challenge_method", "S256")] }
        let location = try await client.signIn(query: query, username: user)
        return (try #require(queryItem("code", of: location)), pkce?.verifier)
    }

    func exchange(
        _ client: any TestClientProtocol, code: String, verifier: String?,
        redirect: String = App.callback, headers: HTTPFields = basic(App.gatewayID, App.gatewaySecret)
    )
        async throws -> TestResponse
    {
        var fields = [("grant_type", "authorization_code"), ("code", code), ("redirect_uri", redirect)]
        if let verifier { fields.append(("code_verifier", verifier)) }
        return try await client.postForm("/oauth/token", fields, headers: headers)
    }

    func expectOAuthError(
        _ response: TestResponse, _ status: HTTPResponse.Status, _ code: String,
        sourceLocation: SourceLocation = #_sourceLocation
    ) throws {
        #expect(response.status == status, sourceLocation: sourceLocation)
        #expect(try json(response)["error"] == .string(code), sourceLocation: sourceLocation)
        #expect(response.headers[.cacheControl] == "no-store", sourceLocation: sourceLocation)
    }

    @Test func codeFlowIssuesAuth0StyleTokens() async throws {
        let app = try await App()
        try await app.run { client in
            let (code, verifier) = try await authorize(client)
            let response = try await exchange(client, code: code, verifier: verifier)
            #expect(response.status == .ok)
            #expect(response.headers[.cacheControl] == "no-store")
            let tokens = try json(response)
            #expect(tokens["token_type"] == "Bearer")
            #expect(tokens["expires_in"] == 600)
            #expect(tokens["scope"] == "email offline_access openid profile read:billing read:todos")
            #expect(tokens["refresh_token"]?.stringValue != nil)

            let access = try await app.verifier().verify(try #require(tokens["access_token"]?.stringValue))
            #expect(access.subject == "auth0|alice")
            #expect(access.audiences == ["urn:todos-api", "http://localhost:8790/userinfo"])
            #expect(access.string("azp") == App.gatewayID)
            #expect(access[claim: "permissions"] == ["read:todos", "read:billing", "write:todos"])
            #expect(access.expiresAt == app.clock.now.addingTimeInterval(600))

            let id = try await app.verifier(audience: App.gatewayID).verify(
                try #require(tokens["id_token"]?.stringValue))
            #expect(id.string("nonce") == "nonce-1")
            #expect(id.string("email") == "alice@example.com")
            #expect(id.string("name") == "Alice Example")
        }
    }

    @Test func scopeIsLimitedToTheUsersPermissions() async throws {
        let app = try await App()
        try await app.run { client in
            let (code, verifier) = try await authorize(client, user: "bob", scope: "openid read:todos read:billing")
            let tokens = try json(try await exchange(client, code: code, verifier: verifier))
            #expect(tokens["scope"] == "openid read:todos")
            #expect(tokens["refresh_token"] == nil)
            let access = try await app.verifier().verify(try #require(tokens["access_token"]?.stringValue))
            #expect(access.scopes == ["openid", "read:todos"])
        }
    }

    @Test func pkceFailures() async throws {
        let app = try await App()
        try await app.run { client in
            let first = try await authorize(client)
            try expectOAuthError(
                try await exchange(client, code: first.code, verifier: PKCEPair().verifier), .badRequest,
                "invalid_grant")
            let second = try await authorize(client)
            try expectOAuthError(
                try await exchange(client, code: second.code, verifier: nil), .badRequest, "invalid_request")
            let third = try await authorize(client, pkce: nil)
            try expectOAuthError(
                try await exchange(client, code: third.code, verifier: PKCEPair().verifier), .badRequest,
                "invalid_grant")
            let fourth = try await authorize(client)
            try expectOAuthError(
                try await exchange(client, code: fourth.code, verifier: "short"), .badRequest, "invalid_grant")
            // A verifier outside RFC 7636's 43-128 unreserved characters is refused even when it matches.
            let shortPair = PKCEPair(verifier: String(repeating: "a", count: 42))
            let fifth = try await authorize(client, pkce: shortPair)
            try expectOAuthError(
                try await exchange(client, code: fifth.code, verifier: shortPair.verifier), .badRequest, "invalid_grant"
            )
        }
    }

    @Test func aReplayedCodeRevokesWhatItProduced() async throws {
        let app = try await App()
        try await app.run { client in
            let (code, verifier) = try await authorize(client)
            let tokens = try json(try await exchange(client, code: code, verifier: verifier))
            let refresh = try #require(tokens["refresh_token"]?.stringValue)
            try expectOAuthError(
                try await exchange(client, code: code, verifier: verifier), .badRequest, "invalid_grant")
            let refreshed = try await client.postForm(
                "/oauth/token", [("grant_type", "refresh_token"), ("refresh_token", refresh)],
                headers: basic(App.gatewayID, App.gatewaySecret))
            try expectOAuthError(refreshed, .badRequest, "invalid_grant")
        }
    }

    @Test func codeBindingAndExpiry() async throws {
        let app = try await App()
        try await app.run { client in
            let mismatch = try await authorize(client)
            try expectOAuthError(
                try await exchange(
                    client, code: mismatch.code, verifier: mismatch.verifier, redirect: "http://localhost:8788/other"),
                .badRequest, "invalid_grant")
            let other = try await authorize(client)
            try expectOAuthError(
                try await exchange(
                    client, code: other.code, verifier: other.verifier,
                    headers: basic(App.machineID, App.machineSecret)),
                .badRequest, "unauthorized_client")
            let late = try await authorize(client)
            app.clock.advance(by: 61)
            try expectOAuthError(
                try await exchange(client, code: late.code, verifier: late.verifier), .badRequest, "invalid_grant")
        }
    }

    @Test func clientAuthenticationFailures() async throws {
        let app = try await App()
        try await app.run { client in
            let (code, verifier) = try await authorize(client)
            let wrongSecret = try await exchange(
                client, code: code, verifier: verifier, headers: basic(App.gatewayID, "wrong"))
            try expectOAuthError(wrongSecret, .unauthorized, "invalid_client")
            #expect(wrongSecret.headers[.wwwAuthenticate]?.hasPrefix("Basic realm=") == true)
            let unknown = try await exchange(client, code: code, verifier: verifier, headers: basic("nobody", "x"))
            try expectOAuthError(unknown, .unauthorized, "invalid_client")
            let none = try await exchange(client, code: code, verifier: verifier, headers: [:])
            try expectOAuthError(none, .unauthorized, "invalid_client")
            let both = try await client.postForm(
                "/oauth/token", [("grant_type", "client_credentials"), ("client_secret", App.machineSecret)],
                headers: basic(App.machineID, App.machineSecret))
            try expectOAuthError(both, .badRequest, "invalid_request")
            let garbage = try await client.postForm(
                "/oauth/token", [("grant_type", "client_credentials")],
                headers: [.authorization: "Basic %%%"])
            try expectOAuthError(garbage, .unauthorized, "invalid_client")
        }
    }

    @Test func refreshTokensRotateAndReuseRevokesTheFamily() async throws {
        let app = try await App()
        try await app.run { client in
            let (code, verifier) = try await authorize(client)
            let first = try #require(
                try json(try await exchange(client, code: code, verifier: verifier))["refresh_token"]?.stringValue)
            func refresh(_ token: String, scope: String? = nil) async throws -> TestResponse {
                var fields = [("grant_type", "refresh_token"), ("refresh_token", token)]
                if let scope { fields.append(("scope", scope)) }
                return try await client.postForm(
                    "/oauth/token", fields, headers: basic(App.gatewayID, App.gatewaySecret))
            }
            let rotated = try json(try await refresh(first))
            let second = try #require(rotated["refresh_token"]?.stringValue)
            #expect(second != first)
            #expect(rotated["id_token"]?.stringValue != nil)

            let narrowed = try json(try await refresh(second, scope: "read:todos"))
            #expect(narrowed["scope"] == "read:todos")
            let third = try #require(narrowed["refresh_token"]?.stringValue)
            try expectOAuthError(
                try await refresh(third, scope: "read:todos write:todos"), .badRequest, "invalid_scope")

            // Presenting a rotated token again revokes the family, including the newest token.
            try expectOAuthError(try await refresh(first), .badRequest, "invalid_grant")
            try expectOAuthError(try await refresh(third), .badRequest, "invalid_grant")
        }
    }

    @Test func aReuseIntervalHonoursARetryAndOnlyWithinIt() async throws {
        let app = try await App(environment: ["DEVIDP_REFRESH_REUSE_INTERVAL": "10s"])
        try await app.run { client in
            let (code, verifier) = try await authorize(client)
            let first = try #require(
                try json(try await exchange(client, code: code, verifier: verifier))["refresh_token"]?.stringValue)
            func refresh(_ token: String) async throws -> TestResponse {
                try await client.postForm(
                    "/oauth/token", [("grant_type", "refresh_token"), ("refresh_token", token)],
                    headers: basic(App.gatewayID, App.gatewaySecret))
            }
            #expect(try await refresh(first).status == .ok)
            // The answer was lost: the same token again, 9 s later, is honoured (Auth0's "Reuse Interval").
            app.clock.advance(by: 9)
            let retry = try json(try await refresh(first))
            let fresh = try #require(retry["refresh_token"]?.stringValue)
            // After the interval it is a reuse: the family goes.
            app.clock.advance(by: 2)
            try expectOAuthError(try await refresh(first), .badRequest, "invalid_grant")
            try expectOAuthError(try await refresh(fresh), .badRequest, "invalid_grant")
        }
    }

    @Test func revokedRefreshTokensStopWorking() async throws {
        let app = try await App()
        try await app.run { client in
            let (code, verifier) = try await authorize(client)
            let refresh = try #require(
                try json(try await exchange(client, code: code, verifier: verifier))["refresh_token"]?.stringValue)
            let revoke = try await client.postForm(
                "/oauth/revoke", [("token", refresh)], headers: basic(App.gatewayID, App.gatewaySecret))
            #expect(revoke.status == .ok)
            let unknown = try await client.postForm(
                "/oauth/revoke", [("token", "nope")], headers: basic(App.gatewayID, App.gatewaySecret))
            #expect(unknown.status == .ok)
            let refreshed = try await client.postForm(
                "/oauth/token", [("grant_type", "refresh_token"), ("refresh_token", refresh)],
                headers: basic(App.gatewayID, App.gatewaySecret))
            try expectOAuthError(refreshed, .badRequest, "invalid_grant")
        }
    }

    @Test func clientCredentialsAsInTheAuth0Walkthrough() async throws {
        let app = try await App()
        try await app.run { client in
            let body =
                #"{"client_id":"\#(App.machineID)","client_secret":"\#(App.machineSecret)","audience":"urn:todos-api","grant_type":"client_credentials"}"#
            let response = try await client.execute(
                uri: "/oauth/token", method: .post, headers: [.contentType: "application/json"],
                body: ByteBuffer(string: body))
            #expect(response.status == .ok)
            let access = try await app.verifier().verify(try #require(try json(response)["access_token"]?.stringValue))
            #expect(access.subject == "todos-cli@clients")
            #expect(access.audiences == ["urn:todos-api"])
            #expect(access.string("gty") == "client-credentials")
            #expect(access.scopes == ["read:todos", "read:billing", "write:todos"])

            let unknownAudience = try await client.postForm(
                "/oauth/token", [("grant_type", "client_credentials"), ("audience", "urn:nope")],
                headers: basic(App.machineID, App.machineSecret))
            try expectOAuthError(unknownAudience, .forbidden, "access_denied")
            let tooMuch = try await client.postForm(
                "/oauth/token", [("grant_type", "client_credentials"), ("scope", "admin")],
                headers: basic(App.machineID, App.machineSecret))
            try expectOAuthError(tooMuch, .badRequest, "invalid_scope")
            let notMachine = try await client.postForm(
                "/oauth/token", [("grant_type", "client_credentials")], headers: basic(App.gatewayID, App.gatewaySecret)
            )
            try expectOAuthError(notMachine, .badRequest, "unauthorized_client")
        }
    }

    @Test func passwordGrantForDemoUsers() async throws {
        let app = try await App()
        try await app.run { client in
            let ok = try await client.postForm(
                "/oauth/token",
                [
                    ("grant_type", "password"), ("username", "bob"), ("password", "bob-password"),
                    ("scope", "read:todos read:billing"),
                ],
                headers: basic(App.machineID, App.machineSecret))
            #expect(ok.status == .ok)
            let access = try await app.verifier().verify(try #require(try json(ok)["access_token"]?.stringValue))
            #expect(access.subject == "auth0|bob")
            #expect(access.scopes == ["read:todos"])
            let wrong = try await client.postForm(
                "/oauth/token", [("grant_type", "password"), ("username", "bob"), ("password", "x")],
                headers: basic(App.machineID, App.machineSecret))
            try expectOAuthError(wrong, .forbidden, "invalid_grant")
        }
    }

    @Test func malformedTokenRequests() async throws {
        let app = try await App()
        try await app.run { client in
            let machine = basic(App.machineID, App.machineSecret)
            try expectOAuthError(
                try await client.postForm("/oauth/token", [], headers: machine), .badRequest, "invalid_request")
            try expectOAuthError(
                try await client.postForm("/oauth/token", [("grant_type", "implicit")], headers: machine),
                .badRequest, "unsupported_grant_type")
            try expectOAuthError(
                try await client.postForm(
                    "/oauth/token", [("grant_type", "password"), ("grant_type", "password")], headers: machine),
                .badRequest, "invalid_request")
            let text = try await client.execute(
                uri: "/oauth/token", method: .post, headers: [.contentType: "text/plain"],
                body: ByteBuffer(string: "grant_type=password"))
            try expectOAuthError(text, .badRequest, "invalid_request")
            let badJSON = try await client.execute(
                uri: "/oauth/token", method: .post, headers: [.contentType: "application/json"],
                body: ByteBuffer(string: #"{"grant_type": 5}"#))
            try expectOAuthError(badJSON, .badRequest, "invalid_request")
        }
    }
}
