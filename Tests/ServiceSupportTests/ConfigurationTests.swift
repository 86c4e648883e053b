import Foundation
import Testing

@testable import ServiceSupport

@Suite("Configuration")
struct ConfigurationTests {
    @Test func dotEnvParsesTheFormsPeopleWrite() throws {
        let values = try DotEnvFile.parse(
            #"""
            # Auth0 settings
            AUTH0_DOMAIN=acme.us.auth0.com
            export AUTH0_AUDIENCE = urn:todos-api   # inline comment
            AUTH0_SCOPE="openid email profile offline_access read:todos"
            SECRET='a#b"c'
            MULTI="line1\nline2"
            EMPTY=
            WINDOWS=yes\#r
            """#)
        #expect(values["AUTH0_DOMAIN"] == "acme.us.auth0.com")
        #expect(values["AUTH0_AUDIENCE"] == "urn:todos-api")
        #expect(values["AUTH0_SCOPE"] == "openid email profile offline_access read:todos")
        #expect(values["SECRET"] == #"a#b"c"#)
        #expect(values["MULTI"] == "line1\nline2")
        #expect(values["EMPTY"] == "")
        #expect(values["WINDOWS"] == "yes")
    }

    @Test func dotEnvReportsTheLineOfAnError() {
        #expect(throws: DotEnvFile.ParseError(line: 2, problem: "expected NAME=value")) {
            try DotEnvFile.parse("A=1\nnot a setting\n")
        }
        #expect(throws: DotEnvFile.ParseError(line: 1, problem: "unterminated quoted value")) {
            try DotEnvFile.parse(#"A="open"#)
        }
        #expect(throws: DotEnvFile.ParseError(line: 1, problem: "'1A' is not a valid variable name")) {
            try DotEnvFile.parse("1A=x")
        }
    }

    @Test func environmentWinsOverTheFile() {
        let settings = Settings(
            environment: ["PORT": "9000", "BLANK": "  "], file: ["PORT": "8000", "HOST": "0.0.0.0", "BLANK": "x"])
        #expect(settings.string("PORT") == "9000")
        #expect(settings.string("HOST") == "0.0.0.0")
        #expect(settings.string("BLANK") == nil)
        #expect(settings.string("MISSING", default: "d") == "d")
    }

    @Test func errorsNameTheVariableAndAnExample() throws {
        let settings = Settings(environment: ["PORT": "eighty", "TTL": "5x", "URL": "ftp://x"])
        let port = #expect(throws: ConfigurationError.self) {
            try settings.integer("PORT", default: 8789, in: 1...65535)
        }
        #expect(
            port?.description
                == "Configuration error: PORT must be a whole number from 1 to 65535 (for example PORT=8789)")
        let missing = #expect(throws: ConfigurationError.self) {
            try settings.required("AUTH0_DOMAIN", example: "acme.us.auth0.com")
        }
        #expect(
            missing?.description
                == "Configuration error: AUTH0_DOMAIN is missing (for example AUTH0_DOMAIN=acme.us.auth0.com)")
        #expect(throws: ConfigurationError.self) { try settings.duration("TTL", default: 60, in: 1...100) }
        #expect(throws: ConfigurationError.self) { try settings.url("URL", example: "https://x") }
    }

    @Test func secretsAreAtLeast32CharactersAndNeverSilentlyWeak() throws {
        let strong = String(repeating: "k", count: 32)
        let settings = Settings(environment: ["STRONG": strong, "WEAK": "short", "BLANK": "  "])
        #expect(try settings.secret("STRONG") == strong)
        #expect(try settings.requiredSecret("STRONG") == strong)
        #expect(try settings.secret("UNSET") == nil)
        #expect(try settings.secret("BLANK") == nil)
        let weak = #expect(throws: ConfigurationError.self) { try settings.secret("WEAK") }
        #expect(weak?.variable == "WEAK")
        #expect(weak?.description.contains("at least 32 characters") == true)
        #expect(throws: ConfigurationError.self) { try settings.requiredSecret("WEAK") }
        let missing = #expect(throws: ConfigurationError.self) { try settings.requiredSecret("UNSET") }
        #expect(missing?.description.contains("UNSET is missing") == true)
    }

    @Test func durationsAcceptUnits() throws {
        let settings = Settings(environment: ["A": "90", "B": "15m", "C": "1h", "D": "30d"])
        #expect(try settings.duration("A", default: 0, in: 0...1e9) == 90)
        #expect(try settings.duration("B", default: 0, in: 0...1e9) == 900)
        #expect(try settings.duration("C", default: 0, in: 0...1e9) == 3600)
        #expect(try settings.duration("D", default: 0, in: 0...1e9) == 2_592_000)
    }

    @Test(arguments: [
        ("acme.us.auth0.com", "https://acme.us.auth0.com/"),
        ("https://acme.us.auth0.com", "https://acme.us.auth0.com/"),
        ("https://acme.us.auth0.com/", "https://acme.us.auth0.com/"),
        ("http://localhost:8790", "http://localhost:8790/"),
        ("localhost:8790", "https://localhost:8790/"), (" acme.eu.auth0.com/ ", "https://acme.eu.auth0.com/"),
    ])
    func auth0DomainBecomesAnIssuer(domain: String, issuer: String) throws {
        #expect(try Auth0Domain.issuer(from: domain) == issuer)
    }

    @Test(arguments: [
        "", "ftp://acme.auth0.com", "acme auth0.com", "https://", "https://acme.auth0.com/?x=1", "-bad.com",
    ])
    func malformedAuth0DomainsAreRefused(domain: String) {
        #expect(throws: ConfigurationError.self) { try Auth0Domain.issuer(from: domain) }
    }
}
