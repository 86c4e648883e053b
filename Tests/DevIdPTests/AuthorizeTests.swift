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

@Suite("DevIdP /authorize")
struct AuthorizeTests {
    typealias App = DevIdPTestApp

    func query(_ changes: [String: String?] = [:]) -> [(String, String)] {
        var items: [String: String] = [
            "client_id": App.gatewayID, "redirect_uri": App.callback, "response_type": "code",
            "scope": "openid profile email offline_access read:todos", "state": "xyz", "nonce": "n-0S6",
            "audience": "urn:todos-api", "code_challenge": PKCEPair().challenge, "code_challenge_method": "S256",
        ]
        for (name, value) in changes { items[name] = value }
        return items.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
    }

    @Test func discoveryLooksLikeAnAuth0Tenant() async throws {
        let app = try await App()
        try await app.run { client in
            let metadata = try await client.execute(uri: "/.well-known/openid-configuration", method: .get) {
                try json($0)
            }
            #expect(metadata["issuer"] == "http://localhost:8790/")
            #expect(metadata["token_endpoint"] == "http://localhost:8790/oauth/token")
            #expect(metadata["jwks_uri"] == "http://localhost:8790/.well-known/jwks.json")
            #expect(metadata["registration_endpoint"] == "http://localhost:8790/oidc/register")
            #expect(metadata["code_challenge_methods_supported"] == ["S256"])
            // The same document as RFC 8414 metadata, as Auth0 serves it.
            let rfc8414 = try await client.execute(uri: "/.well-known/oauth-authorization-server", method: .get) {
                try json($0)
            }
            #expect(rfc8414 == metadata)
            let jwks = try await client.execute(uri: "/.well-known/jwks.json", method: .get) { response in
                #expect(response.headers[.cacheControl] == "public, max-age=600")
                return try json(response)
            }
            let key = try #require(jwks["keys"]?.arrayValue?.first?.objectValue)
            #expect(key["kid"] == .string(app.signingKey.keyID))
            #expect(key["alg"] == "RS256")
            #expect(key["use"] == "sig")
        }
    }

    @Test func showsASignInFormListingTheDemoUsers() async throws {
        let app = try await App()
        try await app.run { client in
            try await client.execute(uri: "/authorize?" + encode(query(["login_hint": "bob"])), method: .get) {
                response in
                #expect(response.status == .ok)
                #expect(response.headers[.xFrameOptions] == "DENY")
                #expect(response.headers[.contentSecurityPolicy]?.contains("frame-ancestors 'none'") == true)
                let html = String(buffer: response.body)
                #expect(html.contains(#"<form method="post""#))
                #expect(html.contains(#"value="bob""#))
                #expect(html.contains("alice-password"))
                #expect(html.contains("Never use it in production"))
            }
        }
    }

    @Test(arguments: [
        ["client_id": "unknown"], ["client_id": nil], ["redirect_uri": "https://evil.example/callback"],
        ["redirect_uri": "http://localhost:8788/callback/../evil"],
    ])
    func errorsBeforeTheRedirectURIIsValidatedAreAPage(changes: [String: String?]) async throws {
        let app = try await App()
        try await app.run { client in
            try await client.execute(uri: "/authorize?" + encode(query(changes)), method: .get) { response in
                #expect(response.status == .badRequest)
                #expect(response.headers[.location] == nil)
                #expect(response.headers[.contentType] == "text/html; charset=utf-8")
            }
        }
    }

    @Test func aRepeatedParameterIsAPage() async throws {
        let app = try await App()
        try await app.run { client in
            let uri = "/authorize?" + encode(query() + [("redirect_uri", "https://evil.example/cb")])
            try await client.execute(uri: uri, method: .get) { response in
                #expect(response.status == .badRequest)
                #expect(response.headers[.location] == nil)
            }
        }
    }

    @Test(
        arguments: [
            (["response_type": "token"], "unsupported_response_type"),
            (["code_challenge_method": "plain"], "invalid_request"),
            (["code_challenge_method": nil], "invalid_request"),
            (["code_challenge": "too-short"], "invalid_request"),
            (["audience": "urn:unknown-api"], "access_denied"),
            (["prompt": "none"], "login_required"),
            (["response_mode": "form_post"], "invalid_request"),
        ] as [([String: String?], String)])
    func errorsAfterAreRedirectedWithState(changes: [String: String?], error: String) async throws {
        let app = try await App()
        try await app.run { client in
            try await client.execute(uri: "/authorize?" + encode(query(changes)), method: .get) { response in
                #expect(response.status == .found)
                let location = try #require(response.headers[.location])
                #expect(location.hasPrefix(App.callback + "?"))
                #expect(queryItem("error", of: location) == error)
                #expect(queryItem("state", of: location) == "xyz")
                #expect(queryItem("error_description", of: location)?.isEmpty == false)
            }
        }
    }

    @Test func wrongPasswordShowsTheFormAgainAndCancelDenies() async throws {
        let app = try await App()
        try await app.run { client in
            let page = try await client.execute(uri: "/authorize?" + encode(query()), method: .get)
            let transaction = try #require(hiddenField("transaction", in: String(buffer: page.body)))
            let wrong = try await client.postForm(
                "/authorize",
                [
                    ("transaction", transaction), ("username", "alice"), ("password", "nope"),
                ])
            #expect(wrong.status == .unauthorized)
            #expect(String(buffer: wrong.body).contains("Wrong username or password."))
            let cancel = try await client.postForm("/authorize", [("transaction", transaction), ("action", "cancel")])
            #expect(cancel.status == .seeOther)
            #expect(queryItem("error", of: cancel.headers[.location] ?? "") == "access_denied")
            let again = try await client.postForm(
                "/authorize",
                [
                    ("transaction", transaction), ("username", "alice"), ("password", "alice-password"),
                ])
            #expect(again.status == .badRequest)
            #expect(again.headers[.location] == nil)
        }
    }

    @Test func aSignInExpiresAfterTenMinutes() async throws {
        let app = try await App()
        try await app.run { client in
            let page = try await client.execute(uri: "/authorize?" + encode(query()), method: .get)
            let transaction = try #require(hiddenField("transaction", in: String(buffer: page.body)))
            app.clock.advance(by: 601)
            let response = try await client.postForm(
                "/authorize",
                [
                    ("transaction", transaction), ("username", "alice"), ("password", "alice-password"),
                ])
            #expect(response.status == .badRequest)
            #expect(response.headers[.location] == nil)
        }
    }

    @Test func successRedirectsWithCodeAndState() async throws {
        let app = try await App()
        try await app.run { client in
            let location = try await client.signIn(query: query())
            #expect(location.hasPrefix(App.callback + "?"))
            #expect(queryItem("code", of: location)?.count ?? 0 >= 43)
            #expect(queryItem("state", of: location) == "xyz")
        }
    }
}
