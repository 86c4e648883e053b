import JWTAuth
import ServiceSupport
import Testing

@testable import TodosAPI

@Suite("TodosAPI configuration")
struct TodosAPIConfigurationTests {
    @Test func defaultsFollowTheAuth0Walkthrough() throws {
        let configuration = try TodosAPIConfiguration.load(
            from: Settings(environment: ["AUTH0_DOMAIN": "acme.us.auth0.com"]))
        #expect(configuration.issuer == "https://acme.us.auth0.com/")
        #expect(configuration.audiences == ["urn:todos-api"])
        #expect(configuration.jwksSource == .discovery(issuer: "https://acme.us.auth0.com/"))
        #expect(configuration.host == "127.0.0.1")
        #expect(configuration.port == 8789)
        #expect(configuration.databasePath == ".data/todos.sqlite")
    }

    @Test func explicitIssuerJWKSAndAudiences() throws {
        let configuration = try TodosAPIConfiguration.load(
            from: Settings(environment: [
                "OIDC_ISSUER": "https://kc.example.com/realms/demo", "AUTH0_DOMAIN": "ignored.example.com",
                "AUTH0_AUDIENCE": "urn:todos-api, https://api.example.com", "JWKS_URL": "https://kc.example.com/certs",
                "PORT": "9000",
            ]))
        #expect(configuration.issuer == "https://kc.example.com/realms/demo")
        #expect(configuration.audiences == ["urn:todos-api", "https://api.example.com"])
        #expect(configuration.jwksSource == .url("https://kc.example.com/certs"))
        #expect(configuration.port == 9000)
    }

    @Test(
        arguments: [
            ([:], "AUTH0_DOMAIN"), (["AUTH0_DOMAIN": "not a domain"], "AUTH0_DOMAIN"),
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
}
