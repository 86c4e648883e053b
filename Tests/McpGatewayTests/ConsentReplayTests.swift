import Foundation
import HTTPTypes
import HummingbirdTesting
import JWTAuth
import NIOCore
import ServiceSupport
import TestSupport
import Testing

@testable import McpGateway

/// A consent form is taken once: submitted twice at once, replayed with the cookie it is bound to, re-encoded, or
/// approved after it was denied, only its first submission starts a sign-in.
@Suite("Gateway: a consent form is taken once")
struct ConsentReplayTests {
    typealias App = GatewayTestApp

    /// A consent page shown to one browser: its cookies and the form's fields.
    struct ShownForm {
        let cookies: HTTPFields
        let requestID: String
        let csrf: String

        func fields(_ decision: String? = "approve", requestID: String? = nil) -> [(String, String)] {
            var fields = [("request_id", requestID ?? self.requestID), ("csrf_token", csrf)]
            if let decision { fields.append(("decision", decision)) }
            return fields
        }
    }

    func showForm(_ client: any TestClientProtocol, clientID: String, state: String = "s") async throws -> ShownForm {
        let query = formBody([
            ("response_type", "code"), ("client_id", clientID), ("redirect_uri", App.redirectURI),
            ("code_challenge", PKCEPair().challenge), ("code_challenge_method", "S256"), ("state", state),
        ])
        let page = try await client.execute(uri: "/authorize?" + query, method: .get)
        #expect(page.status == .ok)
        let jar = CookieJar()
        jar.absorb(page)
        let html = String(buffer: page.body)
        return ShownForm(
            cookies: jar.header, requestID: try #require(hiddenField("request_id", html)),
            csrf: try #require(hiddenField("csrf_token", html)))
    }

    func expectExpiredPage(_ response: TestResponse, _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(response.status == .badRequest, "\(what)", sourceLocation: sourceLocation)
        #expect(response.headers[.location] == nil, "\(what)", sourceLocation: sourceLocation)
        #expect(
            String(buffer: response.body).contains("This request has expired"), "\(what)",
            sourceLocation: sourceLocation)
    }

    func isSignInStart(_ response: TestResponse) -> Bool {
        response.status == .seeOther && response.headers[.location]?.hasPrefix(FakeProvider.issuer + "authorize?") == true
    }

    @Test func fiveConcurrentSubmissionsStartOneSignIn() async throws {
        let app = try await App()
        try await app.run { client in
            let registered = try await client.registerClient()
            let form = try await showForm(client, clientID: registered.id)
            let responses = try await withThrowingTaskGroup(of: TestResponse.self) { group in
                for _ in 0..<5 {
                    group.addTask { try await client.postForm("/authorize", form.fields(), headers: form.cookies) }
                }
                var all: [TestResponse] = []
                for try await response in group { all.append(response) }
                return all
            }
            #expect(responses.count == 5)
            #expect(responses.filter(isSignInStart).count == 1)
            for response in responses where !isSignInStart(response) {
                expectExpiredPage(response, "concurrent duplicate")
            }
        }
    }

    @Test func aReplayWithTheOriginalCookieIsRefused() async throws {
        let app = try await App()
        try await app.run { client in
            let registered = try await client.registerClient()
            let form = try await showForm(client, clientID: registered.id)
            let first = try await client.postForm("/authorize", form.fields(), headers: form.cookies)
            #expect(isSignInStart(first))
            // The browser was told to drop the cookie; an attacker (or a replaying proxy) keeps it.
            for decision in ["approve", nil, "deny"] as [String?] {
                expectExpiredPage(
                    try await client.postForm("/authorize", form.fields(decision), headers: form.cookies),
                    "replayed \(decision ?? "without decision")")
            }
        }
    }

    @Test func aDeniedFormCannotBeApprovedAfterwards() async throws {
        let app = try await App()
        try await app.run { client in
            let registered = try await client.registerClient()
            let form = try await showForm(client, clientID: registered.id)
            let denied = try await client.postForm("/authorize", form.fields("deny"), headers: form.cookies)
            #expect(denied.status == .seeOther)
            #expect(queryItems(denied.headers[.location] ?? "")["error"] == "access_denied")
            expectExpiredPage(
                try await client.postForm("/authorize", form.fields("approve"), headers: form.cookies),
                "approve after deny")
        }
    }

    /// The same sealed ticket spelt another way: base64url with different unused bits in its last character decodes to
    /// the same bytes (Foundation's decoder does not insist on the canonical form), so it opens as the same ticket.
    static func respelled(_ requestID: String) -> String? {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
        guard let dot = requestID.firstIndex(of: ".") else { return nil }
        var encoded = Array(requestID[requestID.index(after: dot)...])
        let unusedBits: Int
        switch encoded.count % 4 {
        case 2: unusedBits = 4
        case 3: unusedBits = 2
        default: return nil
        }
        guard unusedBits > 0, let last = encoded.last, let index = alphabet.firstIndex(of: last) else { return nil }
        encoded[encoded.count - 1] = alphabet[index ^ 1]
        return String(requestID[...dot]) + String(encoded)
    }

    @Test func aReEncodedTicketIsTheSameForm() async throws {
        let app = try await App()
        try await app.run { client in
            let registered = try await client.registerClient()
            // The ticket's length follows the state's: find one whose base64url has unused bits to flip.
            var found: (ShownForm, String)?
            for length in 1...6 {
                let form = try await showForm(client, clientID: registered.id, state: String(repeating: "s", count: length))
                if let variant = Self.respelled(form.requestID) {
                    found = (form, variant)
                    break
                }
            }
            let (form, variant) = try #require(found)
            #expect(variant != form.requestID)
            // The precondition of the attack: the variant opens as the very same ticket.
            let cipher = TokenCipher(secret: app.configuration.encryptionSecret)
            let original = try #require(ConsentTicket.open(form.requestID, with: cipher, now: app.clock.now))
            let reopened = ConsentTicket.open(variant, with: cipher, now: app.clock.now)
            #expect(reopened?.csrfDigest == original.csrfDigest)

            let first = try await client.postForm("/authorize", form.fields(), headers: form.cookies)
            #expect(isSignInStart(first))
            let replay = try await client.postForm(
                "/authorize", form.fields(requestID: variant), headers: form.cookies)
            expectExpiredPage(replay, "the same ticket re-encoded")
        }
    }

    @Test func aFreshFormOfTheSameBrowserStillWorks() async throws {
        // Taking a form once must not take the next one: each page has its own ticket.
        let app = try await App()
        try await app.run { client in
            let registered = try await client.registerClient()
            let first = try await showForm(client, clientID: registered.id)
            #expect(isSignInStart(try await client.postForm("/authorize", first.fields(), headers: first.cookies)))
            let second = try await showForm(client, clientID: registered.id)
            #expect(second.requestID != first.requestID)
            #expect(isSignInStart(try await client.postForm("/authorize", second.fields(), headers: second.cookies)))
        }
    }
}
