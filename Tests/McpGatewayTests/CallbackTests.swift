import Foundation
import HTTPTypes
import HummingbirdTesting
import JWTAuth
import NIOCore
import ServiceSupport
import Testing

@testable import McpGateway

@Suite("Gateway /callback")
struct CallbackTests {
    typealias App = GatewayTestApp

    /// Runs `/authorize` and the approval; returns the upstream authorize query and the browser's cookies.
    func startSignIn(_ client: any TestClientProtocol, app: App) async throws -> (
        query: [String: String], jar: CookieJar
    ) {
        let registered = try await client.registerClient()
        let jar = CookieJar()
        let pkce = PKCEPair()
        let page = try await client.execute(
            uri: "/authorize?"
                + formBody([
                    ("response_type", "code"), ("client_id", registered.id), ("redirect_uri", App.redirectURI),
                    ("code_challenge", pkce.challenge), ("code_challenge_method", "S256"), ("state", "cs"),
                ]), method: .get)
        jar.absorb(page)
        let html = String(buffer: page.body)
        let approval = try await client.postForm(
            "/authorize",
            [
                ("request_id", try #require(hiddenField("request_id", html))),
                ("csrf_token", try #require(hiddenField("csrf_token", html))), ("decision", "approve"),
            ], headers: jar.header)
        jar.absorb(approval)
        return (queryItems(try #require(approval.headers[.location])), jar)
    }

    func callback(_ client: any TestClientProtocol, _ fields: [(String, String)], jar: CookieJar) async throws
        -> TestResponse
    {
        try await client.execute(uri: "/callback?" + formBody(fields), method: .get, headers: jar.header)
    }

    @Test func completesTheSignInAndIsSingleUse() async throws {
        let app = try await App()
        try await app.run { client in
            let (upstream, jar) = try await startSignIn(client, app: app)
            app.provider.issue(code: "up-1", nonce: try #require(upstream["nonce"]))
            let state = try #require(upstream["state"])
            let response = try await callback(client, [("code", "up-1"), ("state", state)], jar: jar)
            #expect(response.status == .found)
            let redirect = queryItems(try #require(response.headers[.location]))
            #expect(redirect["code"]?.hasPrefix("mcpgw_ac_") == true)
            #expect(redirect["state"] == "cs")
            #expect(redirect["iss"] == App.publicURL)
            #expect(response.headers[values: .setCookie].contains { $0.hasPrefix("gw_signin=;") })
            // The code exchange used the PKCE verifier, which matched the challenge sent upstream.
            let form = app.provider.snapshot.lastForm
            #expect(PKCE.challenge(for: form["code_verifier"] ?? "") == upstream["code_challenge"])
            #expect(app.provider.snapshot.lastHeaders["Authorization"]?.hasPrefix("Basic ") == true)
            let again = try await callback(client, [("code", "up-1"), ("state", state)], jar: jar)
            #expect(again.status == .badRequest)
            #expect(again.headers[.location] == nil)
        }
    }

    @Test func unknownStateAndAnotherBrowserAreRefusedWithoutRedirect() async throws {
        let app = try await App()
        try await app.run { client in
            let unknown = try await callback(client, [("code", "x"), ("state", "forged")], jar: CookieJar())
            #expect(unknown.status == .badRequest)
            #expect(unknown.headers[.location] == nil)
            let (upstream, _) = try await startSignIn(client, app: app)
            app.provider.issue(code: "up-2", nonce: try #require(upstream["nonce"]))
            let otherBrowser = try await callback(
                client, [("code", "up-2"), ("state", try #require(upstream["state"]))], jar: CookieJar())
            #expect(otherBrowser.status == .forbidden)
            #expect(otherBrowser.headers[.location] == nil)
            #expect(app.provider.snapshot.exchangeCount == 0)
        }
    }

    @Test func anUpstreamErrorIsAClearPageWithAWayBack() async throws {
        let app = try await App()
        try await app.run { client in
            let (upstream, jar) = try await startSignIn(client, app: app)
            let response = try await callback(
                client,
                [
                    ("error", "access_denied"), ("error_description", "User did not authorize the request"),
                    ("state", try #require(upstream["state"])),
                ], jar: jar)
            #expect(response.status == .ok)
            #expect(response.headers[.location] == nil)
            let html = String(buffer: response.body)
            #expect(html.contains("User did not authorize the request"))
            #expect(html.contains("error=access_denied"))
            #expect(html.contains("state=cs"))
        }
    }

    @Test func aCodeTheProviderRefusesIsA400PageWithAWayBack() async throws {
        let app = try await App()
        try await app.run { client in
            let (first, firstJar) = try await startSignIn(client, app: app)
            app.provider.update { $0.exchangeFails = true }  // the provider answers invalid_grant
            let failed = try await callback(
                client, [("code", "up-3"), ("state", try #require(first["state"]))], jar: firstJar)
            #expect(failed.status == .badRequest)
            #expect(failed.headers[.location] == nil)
            let html = String(buffer: failed.body)
            #expect(html.contains("Start again from your application"))
            #expect(html.contains("error=access_denied"))
            #expect(html.contains("state=cs"))
            #expect(!html.contains("Invalid authorization code"))  // the provider's words stay in the log
        }
    }

    @Test func aBadIDTokenIsA502PageThatNamesNoInternals() async throws {
        let app = try await App()
        try await app.run { client in
            let (second, secondJar) = try await startSignIn(client, app: app)
            app.provider.issue(code: "up-4", nonce: "another-sign-ins-nonce")
            let replayedIDToken = try await callback(
                client, [("code", "up-4"), ("state", try #require(second["state"]))], jar: secondJar)
            #expect(replayedIDToken.status == .badGateway)
            let html = String(buffer: replayedIDToken.body)
            #expect(!html.contains("nonce"))
            #expect(!html.contains(FakeProvider.issuer))
            #expect(html.contains("request id"))
            #expect(html.contains("error=server_error"))
        }
    }

    @Test func controlCharactersInTheCallbackAreRefused() async throws {
        let app = try await App()
        try await app.run { client in
            let (upstream, jar) = try await startSignIn(client, app: app)
            let state = try #require(upstream["state"])
            let response = try await client.execute(
                uri: "/callback?code=up%00x&state=\(state)", method: .get, headers: jar.header)
            #expect(response.status == .badRequest)
            #expect(response.headers[.location] == nil)
        }
    }

    @Test func aResponseFromAnotherIssuerIsRefused() async throws {
        let app = try await App()
        try await app.run { client in
            let (upstream, jar) = try await startSignIn(client, app: app)
            app.provider.issue(code: "up-5", nonce: try #require(upstream["nonce"]))
            let response = try await callback(
                client,
                [
                    ("code", "up-5"), ("state", try #require(upstream["state"])), ("iss", "https://evil.example/"),
                ], jar: jar)
            #expect(response.status == .badRequest)
            #expect(app.provider.snapshot.exchangeCount == 0)
        }
    }

    @Test func grantedScopeIsWhatTheClientAskedAndTheProviderGranted() async throws {
        let app = try await App()
        app.provider.update { $0.grantedScope = "openid profile email offline_access read:todos" }
        try await app.run { client in
            let tokens = try await client.signIn(app: app, scope: "read:todos read:billing offline_access")
            #expect(ScopeSet(spaceSeparated: tokens.scope) == ["read:todos", "offline_access"])
        }
    }
}
