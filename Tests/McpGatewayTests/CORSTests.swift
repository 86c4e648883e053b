import HTTPTypes
import HummingbirdTesting
import NIOCore
import Testing

@testable import McpGateway

/// CORS as a browser exercises it: preflights first, then the actual request, whose response must let the page read
/// the session id and the 401 challenge.
@Suite("Gateway CORS")
struct CORSTests {
    typealias App = GatewayTestApp
    static let inspector = "http://localhost:6274"

    static func preflight(_ method: String, headers requested: String, origin: String = inspector) -> HTTPFields {
        [
            .origin: origin, .accessControlRequestMethod: method,
            .accessControlRequestHeaders: requested,
        ]
    }

    @Test(arguments: ["/mcp", "/sse", "/messages", "/register", "/token", "/revoke"])
    func preflightsAreAnsweredBeforeAuthentication(path: String) async throws {
        let app = try await App()
        try await app.run { client in
            let response = try await client.execute(
                uri: path, method: .options,
                headers: Self.preflight("POST", headers: "authorization, content-type, mcp-protocol-version"))
            #expect(response.status == .noContent)
            #expect(response.headers[.accessControlAllowOrigin] == Self.inspector)
            #expect(response.headers[.accessControlAllowMethods] == "GET, POST, DELETE, OPTIONS")
            #expect(
                response.headers[.accessControlAllowHeaders]
                    == "Authorization, Content-Type, Accept, Mcp-Session-Id, Mcp-Protocol-Version, Last-Event-ID, DPoP")
            #expect(response.headers[.vary] == "Origin")
            #expect(response.headers[.accessControlAllowCredentials] == nil)
            #expect(response.headers[.wwwAuthenticate] == nil)
        }
    }

    @Test func discoveryDocumentsAreOpenToEveryOrigin() async throws {
        let app = try await App(environment: ["PUBLIC_URL": "https://mcp.example.com"])
        try await app.run { client in
            for path in ["/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-authorization-server"] {
                let preflight = try await client.execute(
                    uri: path, method: .options,
                    headers: Self.preflight("GET", headers: "mcp-protocol-version", origin: "https://any.example"))
                #expect(preflight.status == .noContent)
                #expect(preflight.headers[.accessControlAllowOrigin] == "*")
                let document = try await client.execute(
                    uri: path, method: .get, headers: [.origin: "https://any.example"])
                #expect(document.status == .ok)
                #expect(document.headers[.accessControlAllowOrigin] == "*")
            }
        }
    }

    @Test func theChallengeAndErrorsAreReadableByTheBrowser() async throws {
        let app = try await App()
        try await app.run { client in
            let reply = try await client.mcp(nil, "{}", extra: [.origin: Self.inspector])
            #expect(reply.status == .unauthorized)
            #expect(reply.response.headers[.wwwAuthenticate] != nil)
            #expect(reply.response.headers[.accessControlAllowOrigin] == Self.inspector)
            #expect(
                reply.response.headers[.accessControlExposeHeaders]
                    == "Mcp-Session-Id, Mcp-Protocol-Version, WWW-Authenticate, DPoP-Nonce")

            let token = try await client.postForm(
                "/token", [("grant_type", "authorization_code"), ("code", "nope")], headers: [.origin: Self.inspector])
            #expect(token.status == .badRequest || token.status == .unauthorized)
            #expect(token.headers[.accessControlAllowOrigin] == Self.inspector)
        }
    }

    @Test func theSessionIdIsExposed() async throws {
        let app = try await App()
        try await app.run { client in
            let tokens = try await client.signIn(app: app)
            let reply = try await client.mcp(
                tokens.accessToken,
                #"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"browser","version":"1"}}}"#,
                extra: [.origin: Self.inspector])
            #expect(reply.status == .ok)
            #expect(reply.response.headers[HTTPField.Name("Mcp-Session-Id")!] != nil)
            #expect(reply.response.headers[.accessControlAllowOrigin] == Self.inspector)
            #expect(reply.response.headers[.accessControlExposeHeaders]?.contains("Mcp-Session-Id") == true)
        }
    }

    @Test func registrationFromTheInspectorWorksWithoutConfiguration() async throws {
        let app = try await App()
        try await app.run { client in
            let response = try await client.postJSON(
                "/register",
                #"{"client_name":"MCP Inspector","redirect_uris":["http://localhost:6274/oauth/callback","http://localhost:6274/oauth/callback/debug"],"token_endpoint_auth_method":"none","grant_types":["authorization_code","refresh_token"],"response_types":["code"]}"#,
                headers: [.origin: Self.inspector])
            #expect(response.status == .created)
            #expect(response.headers[.accessControlAllowOrigin] == Self.inspector)
        }
    }

    @Test func otherOriginsGetNoCORSHeadersAndNoPreflight() async throws {
        let app = try await App(environment: [
            "PUBLIC_URL": "https://mcp.example.com", "CORS_ALLOWED_ORIGINS": "https://app.example.com",
        ])
        try await app.run { client in
            // In production, localhost is not allowed unless listed.
            let refused = try await client.execute(
                uri: "/mcp", method: .options, headers: Self.preflight("POST", headers: "authorization"))
            #expect(refused.status == .forbidden)
            #expect(refused.headers[.accessControlAllowOrigin] == nil)
            let token = try await client.postForm(
                "/token", [("grant_type", "refresh_token")], headers: [.origin: "https://evil.example"])
            #expect(token.headers[.accessControlAllowOrigin] == nil)

            let listed = try await client.execute(
                uri: "/mcp", method: .options,
                headers: Self.preflight("POST", headers: "authorization", origin: "https://app.example.com"))
            #expect(listed.status == .noContent)
            #expect(listed.headers[.accessControlAllowOrigin] == "https://app.example.com")
        }
    }

    @Test func pagesGetNoCORSHeaders() async throws {
        let app = try await App()
        try await app.run { client in
            for path in ["/", "/authorize", "/callback", "/health"] {
                let response = try await client.execute(
                    uri: path, method: .get, headers: [.origin: Self.inspector])
                #expect(response.headers[.accessControlAllowOrigin] == nil, "\(path)")
            }
        }
    }

    @Test func anOptionsRequestThatIsNoPreflightIsRouted() async throws {
        let app = try await App()
        try await app.run { client in
            let response = try await client.execute(uri: "/mcp", method: .options, headers: [.origin: Self.inspector])
            #expect(response.status != .noContent)
        }
    }
}
