import Foundation
import HTTPTypes
import HummingbirdTesting
import JWTAuth
import NIOCore
import ServiceSupport
import Testing

@testable import McpGateway

@Suite("Gateway /authorize and consent")
struct AuthorizeTests {
    typealias App = GatewayTestApp

    func query(_ clientID: String, _ changes: [String: String?] = [:]) -> String {
        var items: [String: String] = [
            "response_type": "code", "client_id": clientID, "redirect_uri": App.redirectURI,
            "code_challenge": PKCEPair().challenge, "code_challenge_method": "S256", "state": "s-1",
            "scope": "read:todos offline_access", "resource": App.publicURL + "/mcp",
        ]
        for (name, value) in changes { items[name] = value }
        return "/authorize?" + formBody(items.sorted { $0.key < $1.key }.map { ($0.key, $0.value) })
    }

    @Test func showsAConsentPageThatCannotBeFramed() async throws {
        let app = try await App()
        try await app.run { client in
            let registered = try await client.registerClient()
            let response = try await client.execute(uri: query(registered.id), method: .get)
            #expect(response.status == .ok)
            #expect(response.headers[.xFrameOptions] == "DENY")
            #expect(response.headers[.contentSecurityPolicy]?.contains("frame-ancestors 'none'") == true)
            #expect(response.headers[.cacheControl] == "no-store")
            let cookie = try #require(response.headers[.setCookie])
            #expect(cookie.hasPrefix("gw_consent="))
            #expect(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax") && cookie.contains("Path=/"))
            let html = String(buffer: response.body)
            #expect(html.contains("Test Client"))
            #expect(html.contains("redirects to localhost"))
            #expect(html.contains("It says it is published by client.example; the gateway cannot check this"))
            #expect(html.contains("See your todos"))
            #expect(html.contains("Stay connected"))
            #expect(!html.contains("Create, change and delete"))
            #expect(hiddenField("csrf_token", html) != nil)
        }
    }

    @Test func overHTTPSCookiesAreHostPrefixedAndSecure() async throws {
        let app = try await App(environment: ["PUBLIC_URL": "https://mcp.example.com"])
        try await app.run { client in
            let registered = try await client.registerClient()
            let response = try await client.execute(
                uri: query(registered.id, ["resource": "https://mcp.example.com/mcp"]), method: .get)
            let cookie = try #require(response.headers[.setCookie])
            #expect(cookie.hasPrefix("__Host-gw_consent="))
            #expect(cookie.hasSuffix("; Secure"))
        }
    }

    @Test(arguments: [
        ["client_id": nil], ["client_id": "unknown-client"], ["redirect_uri": "https://evil.example/callback"],
        ["redirect_uri": "http://localhost:3030/callback/../steal"], ["redirect_uri": "http://localhost:3030/other"],
    ])
    func errorsBeforeTheRedirectURIIsTrustedAreAPageNeverARedirect(changes: [String: String?]) async throws {
        let app = try await App()
        try await app.run { client in
            let registered = try await client.registerClient()
            let response = try await client.execute(uri: query(registered.id, changes), method: .get)
            #expect(response.status == .badRequest)
            #expect(response.headers[.location] == nil)
            #expect(response.headers[.contentType] == "text/html; charset=utf-8")
        }
    }

    @Test func aRepeatedRedirectURIIsAPage() async throws {
        let app = try await App()
        try await app.run { client in
            let registered = try await client.registerClient()
            let response = try await client.execute(
                uri: query(registered.id) + "&redirect_uri=" + RedirectURI.formEncode("https://evil.example/cb"),
                method: .get)
            #expect(response.status == .badRequest)
            #expect(response.headers[.location] == nil)
        }
    }

    @Test func loopbackRedirectsMayUseAnyPort() async throws {
        let app = try await App()
        try await app.run { client in
            let registered = try await client.registerClient(redirectURIs: ["http://127.0.0.1/callback"])
            let response = try await client.execute(
                uri: query(registered.id, ["redirect_uri": "http://127.0.0.1:51789/callback"]), method: .get)
            #expect(response.status == .ok)
        }
    }

    @Test(
        arguments: [
            (["response_type": "token"], "unsupported_response_type"),
            (["response_type": nil], "invalid_request"),
            (["code_challenge": nil], "invalid_request"),
            (["code_challenge_method": "plain"], "invalid_request"),
            (["code_challenge_method": nil], "invalid_request"),
            (["code_challenge": "short"], "invalid_request"),
            (["scope": "read:todos admin"], "invalid_scope"),
            (["resource": "https://other.example/mcp"], "invalid_target"),
            (["response_mode": "fragment"], "invalid_request"),
        ] as [([String: String?], String)])
    func errorsAfterAreRedirectedWithStateAndIssuer(changes: [String: String?], error: String) async throws {
        let app = try await App()
        try await app.run { client in
            let registered = try await client.registerClient()
            let response = try await client.execute(uri: query(registered.id, changes), method: .get)
            #expect(response.status == .found)
            let location = try #require(response.headers[.location])
            #expect(location.hasPrefix(App.redirectURI + "?"))
            let items = queryItems(location)
            #expect(items["error"] == error)
            #expect(items["state"] == "s-1")
            #expect(items["iss"] == App.publicURL)
            #expect(items["error_description"]?.isEmpty == false)
        }
    }

    @Test func consentRequiresTheCookieAndTheCSRFToken() async throws {
        let app = try await App()
        try await app.run { client in
            let registered = try await client.registerClient()
            for mutation in ["no cookie", "wrong csrf", "wrong cookie"] {
                let page = try await client.execute(uri: query(registered.id), method: .get)
                let jar = CookieJar()
                jar.absorb(page)
                let html = String(buffer: page.body)
                var csrf = try #require(hiddenField("csrf_token", html))
                var headers = jar.header
                switch mutation {
                case "no cookie": headers = [:]
                case "wrong csrf": csrf = "forged"
                default: headers = [.cookie: "gw_consent=forged"]
                }
                let response = try await client.postForm(
                    "/authorize",
                    [
                        ("request_id", try #require(hiddenField("request_id", html))), ("csrf_token", csrf),
                        ("decision", "approve"),
                    ], headers: headers)
                #expect(response.status == .forbidden, "\(mutation)")
                #expect(response.headers[.location] == nil, "\(mutation)")
            }
            let unknown = try await client.postForm(
                "/authorize", [("request_id", "nope"), ("csrf_token", "x"), ("decision", "approve")])
            #expect(unknown.status == .badRequest)
            #expect(unknown.headers[.location] == nil)
        }
    }

    @Test func denyRedirectsWithAccessDenied() async throws {
        let app = try await App()
        try await app.run { client in
            let registered = try await client.registerClient()
            let page = try await client.execute(uri: query(registered.id), method: .get)
            let jar = CookieJar()
            jar.absorb(page)
            let html = String(buffer: page.body)
            let response = try await client.postForm(
                "/authorize",
                [
                    ("request_id", try #require(hiddenField("request_id", html))),
                    ("csrf_token", try #require(hiddenField("csrf_token", html))), ("decision", "deny"),
                ],
                headers: jar.header)
            #expect(response.status == .seeOther)
            let items = queryItems(try #require(response.headers[.location]))
            #expect(items["error"] == "access_denied")
            #expect(items["state"] == "s-1")
            #expect(items["iss"] == App.publicURL)
        }
    }

    @Test func aFormPostedWithoutADecisionApprovesAndAnUnknownDecisionIsRefused() async throws {
        let app = try await App()
        try await app.run { client in
            let registered = try await client.registerClient()
            for (decision, status) in [(nil, HTTPResponse.Status.seeOther), ("maybe", .badRequest)]
                as [(String?, HTTPResponse.Status)]
            {
                let page = try await client.execute(uri: query(registered.id), method: .get)
                let jar = CookieJar()
                jar.absorb(page)
                let html = String(buffer: page.body)
                var form = [
                    ("request_id", try #require(hiddenField("request_id", html))),
                    ("csrf_token", try #require(hiddenField("csrf_token", html))),
                ]
                if let decision { form.append(("decision", decision)) }
                let response = try await client.postForm("/authorize", form, headers: jar.header)
                #expect(response.status == status)
                if status == .seeOther {
                    #expect(response.headers[.location]?.hasPrefix(FakeProvider.issuer + "authorize?") == true)
                } else {
                    #expect(response.headers[.location] == nil)
                }
            }
        }
    }

    @Test func approvalGoesUpstreamWithPKCEAndIsSingleUse() async throws {
        let app = try await App()
        try await app.run { client in
            let registered = try await client.registerClient()
            let page = try await client.execute(
                uri: query(registered.id, ["scope": "read:todos read:billing offline_access"]), method: .get)
            let jar = CookieJar()
            jar.absorb(page)
            let html = String(buffer: page.body)
            let form = [
                ("request_id", try #require(hiddenField("request_id", html))),
                ("csrf_token", try #require(hiddenField("csrf_token", html))), ("decision", "approve"),
            ]
            let response = try await client.postForm("/authorize", form, headers: jar.header)
            #expect(response.status == .seeOther)
            let upstream = queryItems(try #require(response.headers[.location]))
            #expect(upstream["client_id"] == FakeProvider.clientID)
            #expect(upstream["redirect_uri"] == App.publicURL + "/callback")
            #expect(upstream["audience"] == "urn:todos-api")
            #expect(upstream["code_challenge_method"] == "S256")
            #expect(upstream["code_challenge"]?.count == 43)
            #expect(upstream["nonce"]?.isEmpty == false)
            #expect(upstream["state"]?.count ?? 0 >= 43)
            #expect(
                ScopeSet(spaceSeparated: upstream["scope"] ?? "") == [
                    "openid", "email", "profile", "offline_access", "read:todos", "read:billing",
                ])
            // Nothing secret in the browser: the verifier is not in the URL, the cookies hold only random bindings.
            #expect(!(response.headers[.location] ?? "").contains("verifier"))
            let cookies = response.headers[values: .setCookie]
            #expect(cookies.contains { $0.hasPrefix("gw_signin=") })
            #expect(cookies.contains { $0.hasPrefix("gw_approved=") && $0.contains("Max-Age=2592000") })
            // The approval clears the cookie the form is bound to: the browser cannot submit it twice.
            #expect(cookies.contains { $0.hasPrefix("gw_consent=;") })
            jar.absorb(response)
            let again = try await client.postForm("/authorize", form, headers: jar.header)
            #expect(again.status == .forbidden)
            #expect(again.headers[.location] == nil)
        }
    }

    @Test func anApprovedClientIsNotAskedAgainUnlessItWantsMore() async throws {
        let app = try await App()
        try await app.run { client in
            let registered = try await client.registerClient()
            let jar = CookieJar()
            _ = try await client.authorize(
                app: app, clientID: registered.id, pkce: PKCEPair(), scope: "read:todos", jar: jar)
            let again = try await client.execute(
                uri: query(registered.id, ["scope": "read:todos"]), method: .get, headers: jar.header)
            #expect(again.status == .found)
            #expect(again.headers[.location]?.hasPrefix(FakeProvider.issuer + "authorize?") == true)
            let wider = try await client.execute(
                uri: query(registered.id, ["scope": "read:todos write:todos"]), method: .get, headers: jar.header)
            #expect(wider.status == .ok)
            let forged = try await client.execute(
                uri: query(registered.id, ["scope": "read:todos"]), method: .get,
                headers: [.cookie: "gw_approved=e30.AAAA"])
            #expect(forged.status == .ok)
        }
    }
}

@Suite("Gateway /authorize limits")
struct AuthorizeLimitTests {
    @Test func oversizedStateAndScopeAreRefusedBeforeAnythingIsStored() async throws {
        let app = try await GatewayTestApp()
        try await app.run { client in
            let registered = try await client.registerClient()
            for (name, value, error) in [
                ("state", String(repeating: "s", count: 5000), "invalid_request"),
                ("scope", String(repeating: "read:todos ", count: 100), "invalid_scope"),
            ] {
                var query = [
                    ("response_type", "code"), ("client_id", registered.id),
                    ("redirect_uri", GatewayTestApp.redirectURI),
                    ("code_challenge", PKCEPair().challenge), ("code_challenge_method", "S256"),
                ]
                query.append((name, value))
                let response = try await client.execute(uri: "/authorize?" + formBody(query), method: .get)
                #expect(response.status == .found)
                #expect(queryItems(try #require(response.headers[.location]))["error"] == error)
                #expect(response.headers[.setCookie] == nil)
            }
        }
    }
}
