import JWTAuth
import ServiceSupport
import Testing

@testable import TodosAPI

@Suite("TodosAPI configuration")
struct TodosAPIConfigurationTests {
    @Test func defaultsFollowTheAuth0Walkthrough() throws {
        let configuration = try TodosAPIConfiguration.load(
            from: Settings(environment: ["AUTH0_DOMAIN": "acme.us.auth0.com"]))
        #expect(configuration.tokens?.issuer == "https://acme.us.auth0.com/")
        #expect(configuration.tokens?.audiences == ["urn:todos-api"])
        #expect(configuration.tokens?.jwksSource == .discovery(issuer: "https://acme.us.auth0.com/"))
        #expect(configuration.access == nil)
        #expect(configuration.host == "127.0.0.1")
        #expect(configuration.port == 8789)
        #expect(configuration.databasePath == ".data/todos.sqlite")
    }

    @Test func explicitIssuerJWKSAndAudiences() throws {
        let configuration = try TodosAPIConfiguration.load(
            from: Settings(environment: [
                "OIDC_ISSUER": "https://kc.example.com/realms/demo",
                "AUTH0_AUDIENCE": "urn:todos-api, https://api.example.com", "JWKS_URL": "https://kc.example.com/certs",
                "PORT": "9000",
            ]))
        #expect(configuration.tokens?.issuer == "https://kc.example.com/realms/demo")
        #expect(configuration.tokens?.audiences == ["urn:todos-api", "https://api.example.com"])
        #expect(configuration.tokens?.jwksSource == .url("https://kc.example.com/certs"))
        #expect(configuration.port == 9000)
    }

    @Test func oidcAudienceIsTheGenericName() throws {
        let configuration = try TodosAPIConfiguration.load(
            from: Settings(environment: [
                "OIDC_ISSUER": "https://dev-1.okta.com/oauth2/default", "OIDC_AUDIENCE": "api://todos",
            ]))
        #expect(configuration.tokens?.audiences == ["api://todos"])
        let conflict = #expect(throws: ConfigurationError.self) {
            try TodosAPIConfiguration.load(
                from: Settings(environment: [
                    "OIDC_ISSUER": "https://dev-1.okta.com/oauth2/default", "OIDC_AUDIENCE": "api://todos",
                    "AUTH0_AUDIENCE": "urn:todos-api",
                ]))
        }
        #expect(conflict?.variable == "AUTH0_AUDIENCE")
    }

    @Test func cloudflareAccessAloneOrBesideBearerTokens() throws {
        let alone = try TodosAPIConfiguration.load(
            from: Settings(environment: [
                "ACCESS_TEAM_DOMAIN": "acme.cloudflareaccess.com/", "ACCESS_AUD": "aud-1, aud-2",
            ]))
        #expect(alone.tokens == nil)
        #expect(
            alone.access
                == .init(
                    teamDomain: "https://acme.cloudflareaccess.com", audiences: ["aud-1", "aud-2"],
                    scopes: ["read:todos", "write:todos", "read:billing"]))
        let both = try TodosAPIConfiguration.load(
            from: Settings(environment: [
                "AUTH0_DOMAIN": "acme.us.auth0.com", "ACCESS_TEAM_DOMAIN": "https://acme.cloudflareaccess.com",
                "ACCESS_AUD": "aud-1", "ACCESS_SCOPES": "read:todos",
            ]))
        #expect(both.tokens?.issuer == "https://acme.us.auth0.com/")
        #expect(both.access?.scopes == ["read:todos"])
    }

    @Test(
        arguments: [
            ([:], "AUTH0_DOMAIN"),
            (["OIDC_ISSUER": "https://kc.example.com/realms/demo", "AUTH0_DOMAIN": "a.example.com"], "AUTH0_DOMAIN"),
            (["ACCESS_AUD": "aud"], "ACCESS_TEAM_DOMAIN"),
            (["ACCESS_TEAM_DOMAIN": "acme.cloudflareaccess.com"], "ACCESS_AUD"),
            (["ACCESS_TEAM_DOMAIN": "https://acme.cloudflareaccess.com/x", "ACCESS_AUD": "a"], "ACCESS_TEAM_DOMAIN"),
            (
                ["ACCESS_TEAM_DOMAIN": "acme.cloudflareaccess.com", "ACCESS_AUD": "a", "ACCESS_SCOPES": "admin"],
                "ACCESS_SCOPES"
            ), (["AUTH0_DOMAIN": "not a domain"], "AUTH0_DOMAIN"),
            (["AUTH0_DOMAIN": "a.example.com", "PORT": "0"], "PORT"),
            (["AUTH0_DOMAIN": "a.example.com", "JWKS_URL": "keys.json"], "JWKS_URL"),
            (["OIDC_ISSUER": "kc.example.com"], "OIDC_ISSUER"),
            (["AUTH0_DOMAIN": "a.example.com", "AUTH0_AUDIENCE": " , "], "AUTH0_AUDIENCE"),
        ] as [([String: String], String)])
    func badSettingsNameTheVariable(environment: [String: String], variable: String) {
        let error = #expect(throws: ConfigurationError.self) {
            try TodosAPIConfiguration.load(from: Settings(environment: environment))
        }
        #expect(error?.variable == variable)
    }

    @Test(arguments: [
        (["OIDC_ISSUER": "http://idp.example.com/"], "OIDC_ISSUER"),
        (["AUTH0_DOMAIN": "http://acme.us.auth0.com"], "AUTH0_DOMAIN"),
        (["AUTH0_DOMAIN": "acme.us.auth0.com", "JWKS_REFRESH_COOLDOWN": "0"], "JWKS_REFRESH_COOLDOWN"),
        (
            [
                "AUTH0_DOMAIN": "acme.us.auth0.com", "JWKS_URL": "https://keys.example/jwks.json",
                "JWKS_REFRESH_COOLDOWN": "0",
            ], "JWKS_REFRESH_COOLDOWN"
        ),
        (["ACCESS_TEAM_DOMAIN": "http://team.cloudflareaccess.com", "ACCESS_AUD": "aud"], "ACCESS_TEAM_DOMAIN"),
    ])
    func insecureSettingsAreRefusedUnlessLocal(environment: [String: String], variable: String) {
        #expect {
            try TodosAPIConfiguration.load(from: Settings(environment: environment))
        } throws: { ($0 as? ConfigurationError)?.variable == variable }
    }

    @Test func localProvidersMayUsePlainHTTPAndNoCooldown() throws {
        let configuration = try TodosAPIConfiguration.load(
            from: Settings(environment: ["OIDC_ISSUER": "http://127.0.0.1:8790/", "JWKS_REFRESH_COOLDOWN": "0"]))
        #expect(configuration.jwksRefreshCooldown == 0)
        // Keys served on this machine for a remote issuer's name (a test's JWKS server): allowed too.
        let served = try TodosAPIConfiguration.load(
            from: Settings(environment: [
                "AUTH0_DOMAIN": "tenant.example.test", "JWKS_URL": "http://127.0.0.1:9999/jwks.json",
                "JWKS_REFRESH_COOLDOWN": "0",
            ]))
        #expect(served.jwksRefreshCooldown == 0)
    }
}
