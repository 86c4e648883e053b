import Foundation
import GRDB
import HTTPTypes
import HummingbirdTesting
import JSON
import JWTAuth
import NIOCore
import ServiceSupport
import TestSupport
import Testing

@testable import McpGateway

/// Requests an attacker or a careless client sends to the authorization server, each answered as the RFCs say.
@Suite("Gateway: hostile OAuth requests")
struct HostileOAuthRequestTests {
    typealias App = GatewayTestApp

    /// Whether every character of `text` is one RFC 6749 §5.2 allows in `error_description`.
    func isSafeDescription(_ text: String) -> Bool {
        text.unicodeScalars.allSatisfy { [0x20...0x21, 0x23...0x5B, 0x5D...0x7E].contains(where: $0.value.isIn) }
    }

    @Test func aNULCannotTruncateTheClientID() async throws {
        let app = try await App()
        try await app.run { client in
            let registered = try await client.registerClient()
            let pkce = PKCEPair()
            let page = try await client.execute(
                uri: "/authorize?response_type=code&client_id=\(registered.id)%00zzz&code_challenge=\(pkce.challenge)"
                    + "&code_challenge_method=S256&redirect_uri=" + RedirectURI.formEncode(App.redirectURI),
                method: .get)
            #expect(page.status == .badRequest)
            #expect(page.headers[.location] == nil)
            #expect(!String(buffer: page.body).contains("request_id"))  // no consent form

            let redirect = try await client.authorize(app: app, clientID: registered.id, pkce: pkce)
            let token = try await client.execute(
                uri: "/token", method: .post, headers: [.contentType: "application/x-www-form-urlencoded"],
                body: ByteBuffer(
                    string: "grant_type=authorization_code&client_id=\(registered.id)%00zzz&code="
                        + "\(try #require(redirect["code"]))&code_verifier=\(pkce.verifier)&redirect_uri="
                        + RedirectURI.formEncode(App.redirectURI)))
            try expectOAuthError(token, .badRequest, "invalid_request")
        }
    }

    @Test(arguments: ["state=a%0Ab", "scope=read%3Atodos%09", "client_id=x%7F", "nonce=%C2%9B"])
    func controlCharactersAnywhereInAnAuthorizationRequestAreRefused(_ parameter: String) async throws {
        let app = try await App()
        try await app.run { client in
            let registered = try await client.registerClient()
            let query = [
                "response_type=code", "client_id=\(registered.id)", "code_challenge=\(PKCEPair().challenge)",
                "code_challenge_method=S256", "redirect_uri=" + RedirectURI.formEncode(App.redirectURI), parameter,
            ]
            let page = try await client.execute(uri: "/authorize?" + query.joined(separator: "&"), method: .get)
            #expect(page.status == .badRequest)
            #expect(page.headers[.location] == nil)
        }
    }

    @Test(arguments: ["/token", "/revoke"])
    func aBodyThatIsNotAFormIsInvalidRequest(_ path: String) async throws {
        let app = try await App()
        try await app.run { client in
            try expectOAuthError(
                try await client.postJSON(path, #"{"grant_type":"refresh_token","token":"x"}"#), .badRequest,
                "invalid_request")
            let text = try await client.execute(
                uri: path, method: .post, headers: [.contentType: "text/plain"], body: ByteBuffer(string: "token=x"))
            try expectOAuthError(text, .badRequest, "invalid_request")
            let none = try await client.execute(uri: path, method: .post, body: ByteBuffer(string: "token=x"))
            try expectOAuthError(none, .badRequest, "invalid_request")
        }
    }

    @Test func errorDescriptionsCarryOnlyTheCharactersRFC6749Allows() async throws {
        let app = try await App()
        try await app.run { client in
            let registered = try await client.registerClient()
            let hostile = "x\"\\é<script>\u{1F600}"
            let token = try await client.postForm(
                "/token", [("grant_type", hostile), ("client_id", registered.id)])
            try expectOAuthError(token, .badRequest, "unsupported_grant_type")
            let tokenDescription = try #require(try jsonObject(token)["error_description"]?.stringValue)
            #expect(isSafeDescription(tokenDescription), "\(tokenDescription)")
            #expect(tokenDescription.contains("x''?<script>?"))

            let register = try await client.postJSON(
                "/register", #"{"redirect_uris":["https://a.example/cb"],"scope":"read:todos \"\\é"}"#)
            try expectOAuthError(register, .badRequest, "invalid_client_metadata")
            let registerDescription = try #require(try jsonObject(register)["error_description"]?.stringValue)
            #expect(isSafeDescription(registerDescription), "\(registerDescription)")

            let query = formBody([
                ("response_type", "code"), ("client_id", registered.id), ("redirect_uri", App.redirectURI),
                ("code_challenge", PKCEPair().challenge), ("code_challenge_method", "S256"),
                ("scope", "read:todos \"\\é"),
            ])
            let redirect = try await client.execute(uri: "/authorize?" + query, method: .get)
            #expect(redirect.status == .found)
            let items = queryItems(try #require(redirect.headers[.location]))
            #expect(items["error"] == "invalid_scope")
            let redirectDescription = try #require(items["error_description"])
            #expect(isSafeDescription(redirectDescription), "\(redirectDescription)")
        }
    }

    @Test(arguments: [
        "https://client.example/cb\r\nSet-Cookie: x=1", "https://client.example/cb\u{0}", "https://client.example/a b",
        "https://client.example/caf\u{E9}", "http://localhost:3030/cb%",
    ])
    func redirectURIsThatAreNotURIsCannotBeRegistered(_ uri: String) async throws {
        let app = try await App()
        try await app.run { client in
            let body = String(decoding: try JSONEncoder().encode(["redirect_uris": [uri]]), as: UTF8.self)
            let response = try await client.postJSON("/register", body)
            try expectOAuthError(response, .badRequest, "invalid_redirect_uri")
            let description = try #require(try jsonObject(response)["error_description"]?.stringValue)
            #expect(isSafeDescription(description), "\(description)")
        }
    }

    @Test func aMissingResponseTypeIsInvalidRequest() async throws {
        let app = try await App()
        try await app.run { client in
            let registered = try await client.registerClient()
            let query = formBody([
                ("client_id", registered.id), ("redirect_uri", App.redirectURI),
                ("code_challenge", PKCEPair().challenge), ("code_challenge_method", "S256"), ("state", "s"),
            ])
            let redirect = try await client.execute(uri: "/authorize?" + query, method: .get)
            #expect(redirect.status == .found)
            let items = queryItems(try #require(redirect.headers[.location]))
            #expect(items["error"] == "invalid_request")
            #expect(items["state"] == "s")
        }
    }

    @Test func theTokenRequestMustRepeatARedirectURIThatTheAuthorizationRequestSent() async throws {
        let app = try await App()
        try await app.run { client in
            let registered = try await client.registerClient()
            func exchange(sendRedirectURI: Bool, atToken: Bool) async throws -> TestResponse {
                let pkce = PKCEPair()
                let redirect = try await client.authorize(
                    app: app, clientID: registered.id, pkce: pkce, sendRedirectURI: sendRedirectURI)
                var fields = [
                    ("grant_type", "authorization_code"), ("code", try #require(redirect["code"])),
                    ("client_id", registered.id), ("code_verifier", pkce.verifier),
                ]
                if atToken { fields.append(("redirect_uri", App.redirectURI)) }
                return try await client.postForm("/token", fields)
            }
            try expectOAuthError(
                try await exchange(sendRedirectURI: true, atToken: false), .badRequest, "invalid_grant")
            #expect(try await exchange(sendRedirectURI: true, atToken: true).status == .ok)
            // Left out at /authorize (the client registered one URI): the token request may leave it out too.
            #expect(try await exchange(sendRedirectURI: false, atToken: false).status == .ok)
            #expect(try await exchange(sendRedirectURI: false, atToken: true).status == .ok)
        }
    }

    @Test func theConsentFormAnswersWith303() async throws {
        let app = try await App()
        try await app.run { client in
            let registered = try await client.registerClient()
            for decision in ["approve", "deny"] {
                let jar = CookieJar()
                let query = formBody([
                    ("response_type", "code"), ("client_id", registered.id), ("redirect_uri", App.redirectURI),
                    ("code_challenge", PKCEPair().challenge), ("code_challenge_method", "S256"),
                ])
                let page = try await client.execute(uri: "/authorize?" + query, method: .get)
                jar.absorb(page)
                let html = String(buffer: page.body)
                let answer = try await client.postForm(
                    "/authorize",
                    [
                        ("request_id", try #require(hiddenField("request_id", html))),
                        ("csrf_token", try #require(hiddenField("csrf_token", html))), ("decision", decision),
                    ], headers: jar.header)
                #expect(answer.status == .seeOther, "\(decision)")
            }
        }
    }

    @Test func thePreviousRefreshTokenWorksOnlyWithinTheReuseInterval() async throws {
        let app = try await App()
        try await app.run { client in
            let tokens = try await client.signIn(app: app)
            func refresh(_ token: String) async throws -> TestResponse {
                try await client.postForm(
                    "/token",
                    [("grant_type", "refresh_token"), ("refresh_token", token), ("client_id", tokens.clientID)])
            }
            let r0 = try #require(tokens.refreshToken)
            let first = try await refresh(r0)
            #expect(first.status == .ok)
            // Lost responses: r0 is retried within the 60-second grace, three times.
            for _ in 0..<3 {
                app.clock.advance(by: 15)
                #expect(try await refresh(r0).status == .ok)
            }
            // A minute and a second after the rotation, r0 is a replay: invalid_grant, and the grant is revoked.
            app.clock.advance(by: 16)
            try expectOAuthError(try await refresh(r0), .badRequest, "invalid_grant")
            let latest = try #require(try jsonObject(first)["access_token"]?.stringValue)
            #expect(
                try await client.execute(
                    uri: "/mcp", method: .post,
                    headers: [
                        .authorization: "Bearer \(latest)", .contentType: "application/json",
                        .accept: "application/json, text/event-stream",
                    ], body: ByteBuffer(string: #"{"jsonrpc":"2.0","id":1,"method":"ping"}"#)
                ).status == .unauthorized)
        }
    }

    @Test func anonymousAuthorizationRequestsWriteNothing() async throws {
        let app = try await App()
        try await app.run { client in
            let registered = try await client.registerClient()
            let query = formBody([
                ("response_type", "code"), ("client_id", registered.id), ("redirect_uri", App.redirectURI),
                ("code_challenge", PKCEPair().challenge), ("code_challenge_method", "S256"),
                ("state", String(repeating: "s", count: 4000)),
            ])
            for _ in 0..<50 {
                #expect(try await client.execute(uri: "/authorize?" + query, method: .get).status == .ok)
            }
            let rows = try await app.database.read { db in
                try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM pendingAuthorization") ?? -1
            }
            #expect(rows == 0)
            // The consent form still works: the request travels, sealed, in the form.
            let tokens = try await client.signIn(app: app)
            #expect(!tokens.accessToken.isEmpty)
        }
    }

    @Test func aTamperedConsentFormIsRefused() async throws {
        let app = try await App()
        try await app.run { client in
            let registered = try await client.registerClient()
            let jar = CookieJar()
            let query = formBody([
                ("response_type", "code"), ("client_id", registered.id), ("redirect_uri", App.redirectURI),
                ("code_challenge", PKCEPair().challenge), ("code_challenge_method", "S256"),
            ])
            let page = try await client.execute(uri: "/authorize?" + query, method: .get)
            jar.absorb(page)
            let html = String(buffer: page.body)
            var ticket = Array(try #require(hiddenField("request_id", html)))
            ticket[ticket.count - 3] = ticket[ticket.count - 3] == "A" ? "B" : "A"
            let answer = try await client.postForm(
                "/authorize",
                [
                    ("request_id", String(ticket)), ("csrf_token", try #require(hiddenField("csrf_token", html))),
                    ("decision", "approve"),
                ], headers: jar.header)
            #expect(answer.status == .badRequest)
            #expect(answer.headers[.location] == nil)
        }
    }

    @Test func theAnonymousEndpointsAreRateLimitedPerAddress() async throws {
        let app = try await App(environment: ["RATE_LIMIT_REGISTER": "3/min", "RATE_LIMIT_AUTHORIZE": "2/min"])
        try await app.run { client in
            var registered: [String] = []
            for _ in 0..<3 { registered.append(try await client.registerClient().id) }
            let refused = try await client.postJSON("/register", #"{"redirect_uris":["https://a.example/cb"]}"#)
            try expectOAuthError(refused, .tooManyRequests, "temporarily_unavailable")
            #expect(Int(refused.headers[.retryAfter] ?? "") ?? 0 >= 1)
            let query = formBody([
                ("response_type", "code"), ("client_id", registered[0]), ("redirect_uri", App.redirectURI),
                ("code_challenge", PKCEPair().challenge), ("code_challenge_method", "S256"),
            ])
            for _ in 0..<2 { #expect(try await client.execute(uri: "/authorize?" + query, method: .get).status == .ok) }
            let page = try await client.execute(uri: "/authorize?" + query, method: .get)
            #expect(page.status == .tooManyRequests)
            #expect(page.headers[.retryAfter] != nil)
            #expect(page.headers[.contentType]?.hasPrefix("text/html") == true)
            // Other endpoints have their own allowance.
            #expect(try await client.execute(uri: "/health", method: .get).status == .ok)
        }
    }

    @Test func aRememberedApprovalCoversOnlyItsRedirectURI() async throws {
        let app = try await App()
        try await app.run { client in
            let other = "https://elsewhere.example/cb"
            let registered = try await client.registerClient(redirectURIs: [App.redirectURI, other])
            let jar = CookieJar()
            _ = try await client.authorize(app: app, clientID: registered.id, pkce: PKCEPair(), jar: jar)
            func show(_ redirect: String) async throws -> HTTPResponse.Status {
                try await client.execute(
                    uri: "/authorize?"
                        + formBody([
                            ("response_type", "code"), ("client_id", registered.id), ("redirect_uri", redirect),
                            ("code_challenge", PKCEPair().challenge), ("code_challenge_method", "S256"),
                        ]), method: .get, headers: jar.header
                ).status
            }
            #expect(try await show(App.redirectURI) == .found)  // remembered: straight to the provider
            #expect(try await show(other) == .ok)  // another redirect URI: the consent page again
        }
    }
}

extension UInt32 {
    fileprivate func isIn(_ range: ClosedRange<UInt32>) -> Bool { range.contains(self) }
}
