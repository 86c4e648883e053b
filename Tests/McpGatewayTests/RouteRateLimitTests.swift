import Foundation
import HTTPTypes
import HummingbirdTesting
import JSON
import JWTAuth
import NIOCore
import ServiceSupport
import Testing

@testable import McpGateway

/// The anonymous endpoints are limited by route, not by literal path: every spelling of a path that the router
/// resolves to `/token` (a trailing slash, doubled slashes, a query) draws from the same bucket, and a spelling
/// it does not resolve reaches no handler at all.
@Suite("Gateway: rate limits by route")
struct RouteRateLimitTests {
    typealias App = GatewayTestApp

    /// The path spellings an attacker tries against `route` (`/token`): each either reaches the route's handler, and
    /// is counted, or reaches nothing.
    static func spellings(_ route: String) -> [String] {
        let name = String(route.dropFirst())
        return [
            route, route + "/", "/" + route, "//" + name + "//", route + "?x=1", route + "/?x=1",
        ]
    }

    /// Spellings a router might normalise but Hummingbird does not: percent-encoding and case.
    static func foreignSpellings(_ route: String) -> [String] {
        let name = String(route.dropFirst())
        let first = name.unicodeScalars.first!
        let encoded = "/%" + String(first.value, radix: 16) + name.dropFirst()
        return [encoded, "/%" + String(first.value, radix: 16).uppercased() + name.dropFirst(), route.uppercased()]
    }

    /// Whether `response` is the 429 of an OAuth endpoint.
    func expectLimited(_ response: TestResponse, _ what: String, sourceLocation: SourceLocation = #_sourceLocation)
        throws
    {
        #expect(response.status == .tooManyRequests, "\(what)", sourceLocation: sourceLocation)
        guard response.status == .tooManyRequests else { return }
        #expect(try jsonObject(response)["error"] == "temporarily_unavailable", "\(what)", sourceLocation: sourceLocation)
        #expect(
            Int(response.headers[.retryAfter] ?? "") ?? 0 >= 1, "\(what): Retry-After",
            sourceLocation: sourceLocation)
    }

    @Test func tokenSpellingsShareOneBucket() async throws {
        let app = try await App(environment: ["RATE_LIMIT_TOKEN": "2/min"])
        try await app.run { client in
            let form = [("grant_type", "client_credentials")]
            // Two requests through two different spellings take the whole allowance: both reach the handler.
            for path in ["/token/", "//token"] {
                let response = try await client.postForm(path, form)
                try expectOAuthError(response, .unauthorized, "invalid_client")
            }
            // Every spelling the router resolves to /token is now refused, the plain one included.
            for path in Self.spellings("/token") {
                try expectLimited(try await client.postForm(path, form), path)
            }
        }
    }

    @Test func everySpellingIsCountedFromTheFirstRequest() async throws {
        // Alternating spellings from the start: the third request, whichever spelling it uses, is the one refused.
        for order in [["/token", "/token/", "//token"], ["//token/", "/token", "/token/"], ["/token/", "//token", "/token"]] {
            let app = try await App(environment: ["RATE_LIMIT_TOKEN": "2/min"])
            try await app.run { client in
                let form = [("grant_type", "client_credentials")]
                for path in order.prefix(2) {
                    #expect(try await client.postForm(path, form).status == .unauthorized, "\(order): \(path)")
                }
                try expectLimited(try await client.postForm(order[2], form), "\(order): \(order[2])")
            }
        }
    }

    @Test func registerSpellingsShareOneBucket() async throws {
        let app = try await App(environment: ["RATE_LIMIT_REGISTER": "2/min"])
        try await app.run { client in
            let body = #"{"redirect_uris":["https://a.example/cb"],"token_endpoint_auth_method":"none"}"#
            #expect(try await client.postJSON("/register/", body).status == .created)
            #expect(try await client.postJSON("//register", body).status == .created)
            for path in Self.spellings("/register") {
                try expectLimited(try await client.postJSON(path, body), path)
            }
        }
    }

    @Test func revokeSpellingsShareOneBucket() async throws {
        let app = try await App(environment: ["RATE_LIMIT_REVOKE": "2/min"])
        try await app.run { client in
            let form = [("token", "whatever"), ("client_id", "nobody")]
            for path in ["/revoke/", "//revoke"] {
                let status = try await client.postForm(path, form).status
                #expect(status != .tooManyRequests && status != .notFound, "\(path): \(status)")
            }
            for path in Self.spellings("/revoke") {
                try expectLimited(try await client.postForm(path, form), path)
            }
        }
    }

    @Test func authorizeSpellingsShareOneBucketAndAreRefusedWithAPage() async throws {
        let app = try await App(environment: ["RATE_LIMIT_AUTHORIZE": "2/min", "RATE_LIMIT_REGISTER": "off"])
        try await app.run { client in
            let registered = try await client.registerClient()
            let query = formBody([
                ("response_type", "code"), ("client_id", registered.id), ("redirect_uri", App.redirectURI),
                ("code_challenge", PKCEPair().challenge), ("code_challenge_method", "S256"),
            ])
            // HEAD is not routed to the GET handler: it reaches no handler and spends nothing.
            for uri in ["/authorize?", "/authorize/?", "//authorize?"] {
                #expect(try await client.execute(uri: uri + query, method: .head).status == .notFound, "HEAD \(uri)")
            }
            // Two GETs through two spellings take the whole allowance.
            #expect(try await client.execute(uri: "/authorize/?" + query, method: .get).status == .ok)
            #expect(try await client.execute(uri: "//authorize?" + query, method: .get).status == .ok)
            let attempts: [(String, HTTPRequest.Method)] = Self.spellings("/authorize").map {
                ($0.contains("?") ? $0 + "&" + query : $0 + "?" + query, .get)
            }
            for (uri, method) in attempts {
                let page = try await client.execute(uri: uri, method: method)
                #expect(page.status == .tooManyRequests, "\(method) \(uri)")
                #expect(page.headers[.retryAfter] != nil, "\(method) \(uri)")
                #expect(page.headers[.contentType]?.hasPrefix("text/html") == true, "\(method) \(uri)")
                #expect(page.headers[.location] == nil, "\(method) \(uri)")
            }
            // The consent form's POST is the same route, the same bucket.
            let post = try await client.postForm("/authorize/", [("request_id", "x"), ("csrf_token", "y")])
            #expect(post.status == .tooManyRequests)
            #expect(post.headers[.contentType]?.hasPrefix("text/html") == true)
            #expect(String(buffer: post.body).contains("Too many requests"))
        }
    }

    @Test func spellingsTheRouterDoesNotResolveReachNoHandler() async throws {
        let app = try await App(environment: [
            "RATE_LIMIT_TOKEN": "1/min", "RATE_LIMIT_REGISTER": "1/min", "RATE_LIMIT_REVOKE": "1/min",
            "RATE_LIMIT_AUTHORIZE": "1/min",
        ])
        try await app.run { client in
            for route in ["/token", "/register", "/revoke", "/authorize"] {
                // Many requests through spellings the router does not resolve: each is a 404, none reaches the handler
                // (so none is a way around the limit), and none spends the route's allowance.
                for path in Self.foreignSpellings(route) {
                    for _ in 0..<3 {
                        let response = try await client.execute(
                            uri: path, method: route == "/authorize" ? .get : .post,
                            headers: [.contentType: "application/x-www-form-urlencoded"],
                            body: ByteBuffer(string: "grant_type=client_credentials"))
                        #expect(response.status == .notFound, "\(path)")
                    }
                }
            }
            // The allowance of each route is untouched: its first real request is not limited.
            #expect(
                try await client.postForm("/token", [("grant_type", "client_credentials")]).status == .unauthorized)
            #expect(
                try await client.postJSON("/register", #"{"redirect_uris":["https://a.example/cb"]}"#).status
                    == .created)
        }
    }

    @Test func eachRouteHasItsOwnBucket() async throws {
        let app = try await App(environment: ["RATE_LIMIT_TOKEN": "1/min", "RATE_LIMIT_REVOKE": "1/min"])
        try await app.run { client in
            #expect(try await client.postForm("/token/", [("grant_type", "client_credentials")]).status == .unauthorized)
            try expectLimited(try await client.postForm("//token", [("grant_type", "client_credentials")]), "token")
            // /revoke is another route: its allowance is its own.
            #expect(try await client.postForm("/revoke/", [("token", "x")]).status != .tooManyRequests)
            try expectLimited(try await client.postForm("/revoke", [("token", "x")]), "revoke")
            #expect(try await client.execute(uri: "/health", method: .get).status == .ok)
        }
    }
}
