import Foundation
import HTTPTypes
import HummingbirdTesting
import JSON
import JWTAuth
import NIOCore
import ServiceSupport
import Testing

@testable import McpGateway

/// A database that does not answer, seen by a browser and by an OAuth client: the pages of a sign-in (`/authorize`,
/// `/callback`) answer with a 503 page the browser shows, with `Retry-After` and the request id the user can quote;
/// the OAuth endpoints answer with a 503 `temporarily_unavailable` JSON error, never with an error that blames the
/// client's credentials.
@Suite("Gateway: pages and errors when the database fails")
struct DependencyFailureTests {
    typealias App = GatewayTestApp

    func app(_ faults: DatabaseFaults, environment: [String: String] = [:]) async throws -> App {
        try await App(environment: environment, changeStorage: { faults.wrap(&$0) })
    }

    /// The consent page of a new client: its form fields and cookies.
    func consentForm(_ client: any TestClientProtocol, path: String = "/authorize") async throws -> (
        fields: [(String, String)], cookies: HTTPFields
    ) {
        let registered = try await client.registerClient()
        let page = try await client.execute(
            uri: path + "?"
                + formBody([
                    ("response_type", "code"), ("client_id", registered.id), ("redirect_uri", App.redirectURI),
                    ("code_challenge", PKCEPair().challenge), ("code_challenge_method", "S256"), ("state", "s"),
                ]), method: .get)
        #expect(page.status == .ok)
        let jar = CookieJar()
        jar.absorb(page)
        let html = String(buffer: page.body)
        return (
            [
                ("request_id", try #require(hiddenField("request_id", html))),
                ("csrf_token", try #require(hiddenField("csrf_token", html))), ("decision", "approve"),
            ], jar.header
        )
    }

    /// A 503 page for a browser: HTML, `Retry-After`, the request id of `X-Request-Id` in the page, no redirect.
    func expectUnavailablePage(
        _ response: TestResponse, _ what: String, sourceLocation: SourceLocation = #_sourceLocation
    ) {
        #expect(response.status == .serviceUnavailable, "\(what)", sourceLocation: sourceLocation)
        #expect(
            response.headers[.contentType]?.hasPrefix("text/html") == true,
            "\(what): \(response.headers[.contentType] ?? "no content type")", sourceLocation: sourceLocation)
        #expect(response.headers[.retryAfter] == "3", "\(what): Retry-After", sourceLocation: sourceLocation)
        #expect(response.headers[.location] == nil, "\(what)", sourceLocation: sourceLocation)
        let body = String(buffer: response.body)
        #expect(!body.hasPrefix("{"), "\(what): JSON, not a page", sourceLocation: sourceLocation)
        if let requestID = response.headers[.requestID] {
            #expect(body.contains(requestID), "\(what): the page quotes the request id", sourceLocation: sourceLocation)
        } else {
            Issue.record("\(what): no X-Request-Id", sourceLocation: sourceLocation)
        }
        // The detail stays in the log.
        #expect(!body.contains("test:"), "\(what)", sourceLocation: sourceLocation)
    }

    /// A 503 OAuth error: JSON `temporarily_unavailable` with `Retry-After`.
    func expectUnavailableJSON(
        _ response: TestResponse, _ what: String, sourceLocation: SourceLocation = #_sourceLocation
    ) {
        #expect(response.status == .serviceUnavailable, "\(what): \(response.status)", sourceLocation: sourceLocation)
        #expect(
            response.headers[.contentType]?.hasPrefix("application/json") == true, "\(what)",
            sourceLocation: sourceLocation)
        #expect(response.headers[.retryAfter] == "3", "\(what): Retry-After", sourceLocation: sourceLocation)
        #expect(
            (try? jsonObject(response))?["error"] == "temporarily_unavailable",
            "\(what): \(String(buffer: response.body))", sourceLocation: sourceLocation)
    }

    @Test(arguments: ["/authorize", "/authorize/", "//authorize"])
    func theApprovalIsAPageWhenThePendingSignInCannotBeStored(_ path: String) async throws {
        let faults = DatabaseFaults()
        let app = try await app(faults)
        try await app.run { client in
            let form = try await consentForm(client)
            faults.fail(.insertPendingSignIn)
            let response = try await client.postForm(path, form.fields, headers: form.cookies)
            expectUnavailablePage(response, "POST \(path)")
            #expect(faults.failedCalls == 1)
        }
    }

    @Test func theApprovalIsAPageWhenTheFormCannotBeRecordedAsUsed() async throws {
        let faults = DatabaseFaults()
        let app = try await app(faults)
        try await app.run { client in
            let form = try await consentForm(client)
            faults.fail(.markUsed)
            expectUnavailablePage(
                try await client.postForm("/authorize", form.fields, headers: form.cookies), "POST /authorize")
            // Not taken: once the database answers, the same form still works.
            faults.heal()
            let retried = try await client.postForm("/authorize", form.fields, headers: form.cookies)
            #expect(retried.status == .seeOther)
        }
    }

    @Test(arguments: ["/authorize", "/authorize/"])
    func aRememberedApprovalIsAPageWhenThePendingSignInCannotBeStored(_ path: String) async throws {
        let faults = DatabaseFaults()
        let app = try await app(faults)
        try await app.run { client in
            let registered = try await client.registerClient()
            let jar = CookieJar()
            _ = try await client.authorize(app: app, clientID: registered.id, pkce: PKCEPair(), jar: jar)
            faults.fail(.insertPendingSignIn)
            let response = try await client.execute(
                uri: path + "?"
                    + formBody([
                        ("response_type", "code"), ("client_id", registered.id), ("redirect_uri", App.redirectURI),
                        ("code_challenge", PKCEPair().challenge), ("code_challenge_method", "S256"),
                        ("state", "client-state"), ("resource", App.publicURL + "/mcp"),
                    ]), method: .get, headers: jar.header)
            expectUnavailablePage(response, "GET \(path) (remembered approval)")
            #expect(faults.failedCalls == 1)
        }
    }

    @Test func theCallbackIsAPageWhenThePendingSignInCannotBeRead() async throws {
        let faults = DatabaseFaults()
        let app = try await app(faults)
        try await app.run { client in
            let form = try await consentForm(client)
            let approval = try await client.postForm("/authorize", form.fields, headers: form.cookies)
            let jar = CookieJar()
            jar.absorb(approval)
            let upstream = queryItems(try #require(approval.headers[.location]))
            app.provider.issue(code: "up-1", nonce: try #require(upstream["nonce"]))
            faults.fail(.takePendingSignIn)
            let response = try await client.execute(
                uri: "/callback?" + formBody([("code", "up-1"), ("state", try #require(upstream["state"]))]),
                method: .get, headers: jar.header)
            expectUnavailablePage(response, "GET /callback")
        }
    }

    /// A database failure while storing the grant is caught by the callback itself: still a 503 page, and, as for any
    /// database failure on a browser's page, with `Retry-After`.
    @Test func theCallbackIsAPageWithRetryAfterWhenTheGrantCannotBeStored() async throws {
        let faults = DatabaseFaults()
        let app = try await app(faults)
        try await app.run { client in
            let form = try await consentForm(client)
            let approval = try await client.postForm("/authorize", form.fields, headers: form.cookies)
            let jar = CookieJar()
            jar.absorb(approval)
            let upstream = queryItems(try #require(approval.headers[.location]))
            app.provider.issue(code: "up-2", nonce: try #require(upstream["nonce"]))
            faults.fail(.insertCode)
            let response = try await client.execute(
                uri: "/callback?" + formBody([("code", "up-2"), ("state", try #require(upstream["state"]))]),
                method: .get, headers: jar.header)
            expectUnavailablePage(response, "GET /callback, grant not stored")
        }
    }

    @Test(arguments: ["/token", "/token/"])
    func theTokenEndpointAnswersJSONWhenTheCodeCannotBeRead(_ path: String) async throws {
        let faults = DatabaseFaults()
        let app = try await app(faults)
        try await app.run { client in
            let registered = try await client.registerClient()
            let pkce = PKCEPair()
            let redirect = try await client.authorize(app: app, clientID: registered.id, pkce: pkce)
            faults.fail(.findCode)
            let response = try await client.postForm(
                path,
                [
                    ("grant_type", "authorization_code"), ("code", try #require(redirect["code"])),
                    ("client_id", registered.id), ("redirect_uri", App.redirectURI), ("code_verifier", pkce.verifier),
                ])
            expectUnavailableJSON(response, "POST \(path)")
            // The code was not spent: once the database answers, it is redeemed.
            faults.heal()
            let retried = try await client.postForm(
                path,
                [
                    ("grant_type", "authorization_code"), ("code", try #require(redirect["code"])),
                    ("client_id", registered.id), ("redirect_uri", App.redirectURI), ("code_verifier", pkce.verifier),
                ])
            #expect(retried.status == .ok)
        }
    }

    /// The identity assertion is valid; only the replay store did not answer. The client must be told to retry, not
    /// that its assertion is bad (`invalid_grant` tells it to get another one, from the enterprise's provider).
    @Test func anIdentityAssertionTheDatabaseCannotRecordIsTemporarilyUnavailable() async throws {
        let faults = DatabaseFaults()
        let app = try await app(faults, environment: MachineClientTests.issuerEnvironment)
        let machine = MachineClientTests()
        let secret = try await machine.addClient(app, id: "agent", grant: GrantType.jwtBearer)
        try await app.run { client in
            let assertion = try machine.identityAssertion(app)
            faults.fail(.markUsed)
            let response = try await client.postForm(
                "/token", machine.jwtBearer(assertion), headers: machine.basic("agent", secret))
            expectUnavailableJSON(response, "jwt-bearer grant, replay store down")
            faults.heal()
            #expect(
                try await client.postForm("/token", machine.jwtBearer(assertion), headers: machine.basic("agent", secret))
                    .status == .ok)
        }
    }

    /// Likewise for a `private_key_jwt` client assertion: the client's credentials are good, `invalid_client` (401)
    /// would be a lie that makes it give up.
    @Test func aClientAssertionTheDatabaseCannotRecordIsTemporarilyUnavailable() async throws {
        let faults = DatabaseFaults()
        let app = try await app(faults)
        let machine = MachineClientTests()
        let key = try await MachineClientTests.clientKey.value
        let jwks = String(decoding: JSONValue.object(["keys": [.object(key.publicJWK)]]).serialized(), as: UTF8.self)
        try await machine.addClient(app, id: "signer", method: .privateKeyJWT, jwks: jwks)
        try await app.run { client in
            faults.fail(.markUsed)
            let response = try await client.postForm(
                "/token", machine.assertionForm(try machine.clientAssertion(app, key: key)))
            expectUnavailableJSON(response, "private_key_jwt, replay store down")
        }
    }
}
