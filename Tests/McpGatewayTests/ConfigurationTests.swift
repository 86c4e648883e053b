import JWTAuth
import ServiceSupport
import Testing

@testable import McpGateway

@Suite("Gateway configuration")
struct GatewayConfigurationTests {
    let minimal = [
        "AUTH0_DOMAIN": "acme.us.auth0.com", "AUTH0_CLIENT_ID": "id", "AUTH0_CLIENT_SECRET": "secret",
        "COOKIE_ENCRYPTION_KEY": String(repeating: "c", count: 32),
        "GATEWAY_ENCRYPTION_KEY": String(repeating: "g", count: 32),
    ]

    @Test func defaultsMatchTheSeedsDemo() throws {
        let configuration = try GatewayConfiguration.load(from: Settings(environment: minimal))
        #expect(configuration.publicURL == "http://localhost:8788")
        #expect(configuration.resource == "http://localhost:8788/mcp")
        #expect(configuration.callbackURL == "http://localhost:8788/callback")
        #expect(configuration.port == 8788)
        #expect(configuration.upstream.issuer == "https://acme.us.auth0.com/")
        #expect(configuration.upstream.audience == "urn:todos-api")
        #expect(configuration.upstream.scope == ["openid", "email", "profile", "offline_access", "read:todos"])
        #expect(configuration.upstream.displayName == "Auth0")
        #expect(configuration.apiBaseURL == "http://localhost:8789")
        #expect(configuration.accessTokenLifetime == 3600)
        #expect(configuration.grantLifetime == 30 * 86_400)
        #expect(configuration.allowedOrigins == ["http://localhost:8788"])
        #expect(configuration.isLocalDevelopment)
        #expect(!configuration.isHTTPS)
    }

    @Test func publicURLIsNormalised() throws {
        var environment = minimal
        environment["PUBLIC_URL"] = "https://mcp.example.com/"
        environment["OIDC_ISSUER"] = "https://kc.example.com/realms/demo"
        let configuration = try GatewayConfiguration.load(from: Settings(environment: environment))
        #expect(configuration.publicURL == "https://mcp.example.com")
        #expect(configuration.resourceMetadataURL == "https://mcp.example.com/.well-known/oauth-protected-resource/mcp")
        #expect(configuration.isHTTPS)
        #expect(!configuration.isLocalDevelopment)
        #expect(configuration.upstream.issuer == "https://kc.example.com/realms/demo")
    }

    @Test(
        arguments: [
            ("COOKIE_ENCRYPTION_KEY", nil), ("COOKIE_ENCRYPTION_KEY", "short"), ("GATEWAY_ENCRYPTION_KEY", nil),
            ("AUTH0_CLIENT_ID", nil), ("AUTH0_CLIENT_SECRET", nil), ("AUTH0_DOMAIN", nil),
            ("PUBLIC_URL", "mcp.example.com"),
            ("PUBLIC_URL", "https://mcp.example.com/?x=1"), ("API_BASE_URL", "localhost:8789"),
            ("ACCESS_TOKEN_TTL", "forever"),
            ("MCP_MAX_SESSIONS", "0"),
        ] as [(String, String?)])
    func badSettingsNameTheVariable(variable: String, value: String?) {
        var environment = minimal
        environment[variable] = value
        let error = #expect(throws: ConfigurationError.self) {
            try GatewayConfiguration.load(from: Settings(environment: environment))
        }
        #expect(error?.variable == variable)
    }
}
