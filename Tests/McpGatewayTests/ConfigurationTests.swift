import JWTAuth
import ServiceSupport
import Testing

@testable import McpGateway

extension GatewayConfiguration {
    /// The authorization server settings, for tests of `AUTH_MODE=gateway`.
    var server: AuthorizationServerSettings? {
        if case .authorizationServer(let settings) = mode { settings } else { nil }
    }
}

@Suite("Gateway configuration")
struct GatewayConfigurationTests {
    let minimal = [
        "AUTH0_DOMAIN": "acme.us.auth0.com", "AUTH0_CLIENT_ID": "id", "AUTH0_CLIENT_SECRET": "secret",
        "COOKIE_ENCRYPTION_KEY": String(repeating: "c", count: 32),
        "GATEWAY_ENCRYPTION_KEY": String(repeating: "g", count: 32),
    ]

    func load(_ environment: [String: String]) throws -> GatewayConfiguration {
        try GatewayConfiguration.load(from: Settings(environment: environment))
    }

    @Test func defaultsMatchTheSeedsDemo() throws {
        let configuration = try load(minimal)
        #expect(configuration.publicURL == "http://localhost:8788")
        #expect(configuration.address.resource == "http://localhost:8788/mcp")
        #expect(configuration.address.callbackURL == "http://localhost:8788/callback")
        #expect(configuration.port == 8788)
        #expect(configuration.mode.name == "gateway")
        let server = try #require(configuration.server)
        #expect(server.upstream.issuer == "https://acme.us.auth0.com/")
        #expect(server.upstream.endpoints == .discovery)
        #expect(server.upstream.audience == "urn:todos-api")
        #expect(server.upstream.scope == ["openid", "email", "profile", "offline_access", "read:todos"])
        #expect(server.upstream.grantedScopes == nil)
        #expect(server.upstream.displayName == "Auth0")
        #expect(configuration.apiBaseURL == "http://localhost:8789")
        #expect(server.accessTokenLifetime == 3600)
        #expect(server.grantLifetime == 30 * 86_400)
        #expect(configuration.allowedOrigins == ["http://localhost:8788"])
        #expect(configuration.address.isLocalDevelopment)
        #expect(!configuration.address.isHTTPS)
        #expect(server.clientMetadataDocuments.enabled)
        #expect(!server.clientMetadataDocuments.allowPrivateAddresses)
    }

    @Test(arguments: [
        (["PUBLIC_URL": "http://mcp.example.com"], "PUBLIC_URL"),
        (["AUTH0_DOMAIN": "http://acme.us.auth0.com"], "AUTH0_DOMAIN"),
        (
            ["CLIENT_ID_METADATA_ALLOW_PRIVATE": "true", "PUBLIC_URL": "https://mcp.example.com"],
            "CLIENT_ID_METADATA_ALLOW_PRIVATE"
        ),
    ])
    func insecureSettingsAreRefusedUnlessLocal(changes: [String: String], variable: String) {
        #expect {
            try load(minimal.merging(changes) { $1 })
        } throws: { ($0 as? ConfigurationError)?.variable == variable }
    }

    @Test func localDevelopmentMayUsePlainHTTP() throws {
        let local = try load(
            minimal.merging(["PUBLIC_URL": "http://127.0.0.1:8788", "CLIENT_ID_METADATA_ALLOW_PRIVATE": "true"]) { $1 })
        #expect(local.server?.clientMetadataDocuments.allowPrivateAddresses == true)
    }

    @Test func idTokenAlgorithmsAndTheProvidersName() throws {
        #expect(try load(minimal).server?.upstream.idTokenAlgorithms == [.rs256])
        let configured = try load(minimal.merging(["OIDC_ID_TOKEN_ALGORITHMS": "rs512, ES256"]) { $1 })
        #expect(configured.server?.upstream.idTokenAlgorithms == [.rs512, .es256])
        for bad in ["HS256", "none", ","] {
            #expect(throws: ConfigurationError.self) {
                try load(minimal.merging(["OIDC_ID_TOKEN_ALGORITHMS": bad]) { $1 })
            }
        }
        // A provider on this machine is named by its address, not taken for DevIdP.
        let local = ["AUTH0_DOMAIN": "", "OIDC_ISSUER": "http://localhost:8080/realms/demo"]
        let keycloak = try load(minimal.merging(local) { $1 }.filter { !$0.value.isEmpty })
        #expect(keycloak.server?.upstream.displayName == "localhost:8080")
    }

    @Test func clientMetadataDocumentSettings() throws {
        var environment = minimal
        environment["CLIENT_ID_METADATA_DOCUMENTS"] = "off"
        environment["CLIENT_ID_METADATA_ALLOW_PRIVATE"] = "TRUE"
        let documents = try #require(try load(environment).server).clientMetadataDocuments
        #expect(!documents.enabled)
        #expect(documents.allowPrivateAddresses)
    }

    @Test func publicURLIsNormalised() throws {
        var environment = minimal
        environment["PUBLIC_URL"] = "https://mcp.example.com/"
        environment["AUTH0_DOMAIN"] = nil
        environment["OIDC_ISSUER"] = "https://kc.example.com/realms/demo"
        let configuration = try load(environment)
        #expect(configuration.publicURL == "https://mcp.example.com")
        #expect(configuration.address.resourceMetadataURL == "https://mcp.example.com/.well-known/oauth-protected-resource/mcp")
        #expect(configuration.address.isHTTPS)
        #expect(!configuration.address.isLocalDevelopment)
        let upstream = try #require(configuration.server?.upstream)
        #expect(upstream.issuer == "https://kc.example.com/realms/demo")
        // `audience` is Auth0's parameter: not sent to other providers unless configured.
        #expect(upstream.audience == nil)
    }

    @Test func genericOIDCNames() throws {
        let configuration = try load([
            "OIDC_ISSUER": "https://dev-123.okta.com/oauth2/default", "OIDC_CLIENT_ID": "okta-id",
            "OIDC_CLIENT_SECRET": "okta-secret", "OIDC_SCOPE": "openid email read:todos",
            "OIDC_AUDIENCE": "api://todos", "COOKIE_ENCRYPTION_KEY": String(repeating: "c", count: 32),
            "GATEWAY_ENCRYPTION_KEY": String(repeating: "g", count: 32),
        ])
        let upstream = try #require(configuration.server?.upstream)
        #expect(upstream.clientID == "okta-id")
        #expect(upstream.clientSecret == "okta-secret")
        #expect(upstream.scope == ["openid", "email", "read:todos"])
        #expect(upstream.audience == "api://todos")
        #expect(upstream.displayName == "Okta")
    }

    /// The variables of Cloudflare's `remote-mcp-cf-access` demo, as the Access for SaaS dashboard shows them.
    @Test func accessForSaaSExplicitEndpoints() throws {
        let base = "https://acme.cloudflareaccess.com/cdn-cgi/access/sso/oidc/0123abcd"
        let configuration = try load([
            "ACCESS_CLIENT_ID": "0123abcd", "ACCESS_CLIENT_SECRET": "s3cret",
            "ACCESS_AUTHORIZATION_URL": base + "/authorization", "ACCESS_TOKEN_URL": base + "/token",
            "ACCESS_JWKS_URL": base + "/jwks", "GRANTED_SCOPES": "read:todos write:todos",
            "COOKIE_ENCRYPTION_KEY": String(repeating: "c", count: 32),
            "GATEWAY_ENCRYPTION_KEY": String(repeating: "g", count: 32),
        ])
        let upstream = try #require(configuration.server?.upstream)
        #expect(upstream.issuer == base)
        #expect(
            upstream.endpoints
                == .explicit(
                    authorization: base + "/authorization", token: base + "/token", jwks: base + "/jwks", userinfo: nil)
        )
        #expect(upstream.clientID == "0123abcd")
        #expect(upstream.audience == nil)
        #expect(upstream.grantedScopes == ["read:todos", "write:todos"])
        #expect(upstream.displayName == "Cloudflare Access")
        // The provider grants no API scopes, so none are asked of it.
        #expect(upstream.scope == ["openid", "email", "profile", "offline_access"])
    }

    @Test func externalMode() throws {
        let configuration = try load([
            "AUTH_MODE": "external", "AUTH0_DOMAIN": "acme.us.auth0.com", "PUBLIC_URL": "https://mcp.example.com",
            "GATEWAY_ENCRYPTION_KEY": String(repeating: "e", count: 32),
        ])
        guard case .externalAuthorizationServer(let settings) = configuration.mode else {
            Issue.record("not external: \(configuration.mode.name)")
            return
        }
        #expect(settings.issuer == "https://acme.us.auth0.com/")
        #expect(settings.audiences == ["https://mcp.example.com/mcp", "https://mcp.example.com/sse"])
        #expect(settings.jwksSource == .discovery(issuer: "https://acme.us.auth0.com/"))
        // No authorization server; the gateway signs only the tokens it presents to TodosAPI, for the API's audience.
        #expect(configuration.server == nil)
        #expect(configuration.downstream.kind == .mint)
        #expect(configuration.downstream.audience == "urn:todos-api")
        #expect(configuration.downstream.lifetime == 300)
    }

    @Test func accessMode() throws {
        let configuration = try load([
            "AUTH_MODE": "access", "TEAM_DOMAIN": "acme.cloudflareaccess.com/", "POLICY_AUD": "aud-tag",
            "GATEWAY_ENCRYPTION_KEY": String(repeating: "e", count: 32),
        ])
        guard case .cloudflareAccess(let settings) = configuration.mode else {
            Issue.record("not access: \(configuration.mode.name)")
            return
        }
        #expect(settings.teamDomain == "https://acme.cloudflareaccess.com")
        #expect(settings.certsURL == "https://acme.cloudflareaccess.com/cdn-cgi/access/certs")
        #expect(settings.audiences == ["aud-tag"])
        #expect(settings.scopes == nil, "without ACCESS_SCOPES: every scope of the tools, set when they are made")
    }

    @Test func corsOrigins() throws {
        var environment = minimal
        environment["CORS_ALLOWED_ORIGINS"] = "http://localhost:6274, https://app.example.com"
        let configuration = try load(environment)
        #expect(
            configuration.allowedOrigins == [
                "http://localhost:6274", "https://app.example.com", "http://localhost:8788",
            ])
    }

    @Test(
        arguments: [
            ("COOKIE_ENCRYPTION_KEY", nil), ("COOKIE_ENCRYPTION_KEY", "short"), ("GATEWAY_ENCRYPTION_KEY", nil),
            ("AUTH0_CLIENT_ID", nil), ("AUTH0_CLIENT_SECRET", nil), ("AUTH0_DOMAIN", nil),
            ("PUBLIC_URL", "mcp.example.com"),
            ("PUBLIC_URL", "https://mcp.example.com/?x=1"), ("API_BASE_URL", "localhost:8789"),
            ("ACCESS_TOKEN_TTL", "forever"),
            // GRANTED_SCOPES of no tool: refused when the tools are made (GatewayScopesFromDocumentsTests).
            ("MCP_MAX_SESSIONS", "0"), ("AUTH_MODE", "oauth"),
            ("CORS_ALLOWED_ORIGINS", "localhost:6274"), ("CORS_ALLOWED_ORIGINS", "http://localhost:6274/path"),
            ("CLIENT_ID_METADATA_DOCUMENTS", "maybe"), ("CLIENT_ID_METADATA_ALLOW_PRIVATE", "2"),
        ] as [(String, String?)])
    func badSettingsNameTheVariable(variable: String, value: String?) {
        var environment = minimal
        environment[variable] = value
        let error = #expect(throws: ConfigurationError.self) { try load(environment) }
        #expect(error?.variable == variable)
    }

    @Test(
        arguments: [
            // Two names for one setting that disagree.
            (["OIDC_CLIENT_ID": "other"], "OIDC_CLIENT_ID"),
            (["OIDC_ISSUER": "https://kc.example.com/realms/demo"], "AUTH0_DOMAIN"),
            // Explicit endpoints come as a set.
            (["ACCESS_AUTHORIZATION_URL": "https://idp.example.com/authorize"], "OIDC_TOKEN_URL"),
            (
                [
                    "OIDC_AUTHORIZATION_URL": "https://idp.example.com/authorize",
                    "OIDC_TOKEN_URL": "https://idp.example.com/token", "OIDC_JWKS_URL": "not a url",
                ], "OIDC_JWKS_URL"
            ),
            (["AUTH_MODE": "access"], "TEAM_DOMAIN"),
            (["AUTH_MODE": "access", "TEAM_DOMAIN": "https://acme.cloudflareaccess.com"], "POLICY_AUD"),
            (
                ["AUTH_MODE": "access", "TEAM_DOMAIN": "https://acme.cloudflareaccess.com/x", "POLICY_AUD": "a"],
                "TEAM_DOMAIN"
            ),
            (["AUTH_MODE": "external", "AUTH0_DOMAIN": "", "OIDC_ISSUER": ""], "AUTH0_DOMAIN"),
        ] as [([String: String], String)])
    func conflictingOrIncompleteSettings(extra: [String: String], variable: String) {
        var environment = minimal
        environment.merge(extra) { _, new in new }
        let error = #expect(throws: ConfigurationError.self) { try load(environment) }
        #expect(error?.variable == variable)
    }

    @Test func explicitEndpointsOfAnotherProviderNeedTheIssuer() {
        let error = #expect(throws: ConfigurationError.self) {
            try load([
                "OIDC_CLIENT_ID": "id", "OIDC_CLIENT_SECRET": "secret",
                "OIDC_AUTHORIZATION_URL": "https://idp.example.com/authorize",
                "OIDC_TOKEN_URL": "https://idp.example.com/token", "OIDC_JWKS_URL": "https://idp.example.com/keys",
                "COOKIE_ENCRYPTION_KEY": String(repeating: "c", count: 32),
                "GATEWAY_ENCRYPTION_KEY": String(repeating: "g", count: 32),
            ])
        }
        #expect(error?.variable == "OIDC_ISSUER")
    }
}
