import Foundation
import JWTAuth
import ServiceSupport

/// Everything TodosAPI reads from its environment (or `.dev.vars`).
struct TodosAPIConfiguration: Sendable {
    var host: String
    var port: Int
    /// The issuer tokens must come from, e.g. `https://acme.us.auth0.com/`.
    var issuer: String
    /// The audiences tokens may be meant for (`AUTH0_AUDIENCE`, comma-separated).
    var audiences: Set<String>
    /// Where the issuer's signing keys are: `JWKS_URL`, else OIDC discovery.
    var jwksSource: JWKSSource
    /// Tolerance for clock skew.
    var leeway: TimeInterval
    /// The shortest time between two JWKS refreshes forced by unknown key ids.
    var jwksRefreshCooldown: TimeInterval
    /// The SQLite file.
    var databasePath: String

    static let realm = "todos-api"

    static func load(from settings: Settings) throws(ConfigurationError) -> TodosAPIConfiguration {
        let issuer = try issuer(from: settings)
        let audiences = settings.list("AUTH0_AUDIENCE", default: ["urn:todos-api"])
        guard !audiences.isEmpty else {
            throw ConfigurationError(variable: "AUTH0_AUDIENCE", problem: "names no audience", example: "urn:todos-api")
        }
        let jwksSource: JWKSSource =
            if settings.string("JWKS_URL") != nil {
                .url(try settings.url("JWKS_URL", example: "https://acme.us.auth0.com/.well-known/jwks.json"))
            } else {
                .discovery(issuer: issuer)
            }
        return TodosAPIConfiguration(
            host: settings.string("HOST", default: "127.0.0.1"),
            port: try settings.integer("PORT", default: 8789, in: 1...65535),
            issuer: issuer,
            audiences: Set(audiences),
            jwksSource: jwksSource,
            leeway: try settings.duration("JWT_LEEWAY", default: 60, in: 0...600),
            jwksRefreshCooldown: try settings.duration("JWKS_REFRESH_COOLDOWN", default: 5, in: 0...3600),
            databasePath: settings.string("TODOS_DATABASE", default: ".data/todos.sqlite"))
    }

    /// `OIDC_ISSUER`, exactly as the provider writes it (Okta, Keycloak and Google issuers have no trailing slash), or
    /// else `AUTH0_DOMAIN`, normalised the Auth0 way.
    static func issuer(from settings: Settings) throws(ConfigurationError) -> String {
        if settings.string("OIDC_ISSUER") != nil {
            return try settings.url("OIDC_ISSUER", example: "https://keycloak.example.com/realms/demo")
        }
        guard let domain = settings.string("AUTH0_DOMAIN") else {
            throw ConfigurationError(
                variable: "AUTH0_DOMAIN", problem: "is missing (or set OIDC_ISSUER for a non-Auth0 provider)",
                example: "acme.us.auth0.com")
        }
        return try Auth0Domain.issuer(from: domain)
    }

    var verifierConfiguration: JWTVerifier.Configuration {
        JWTVerifier.Configuration(issuer: issuer, audiences: audiences, leeway: leeway, cacheCapacity: 10_000)
    }

    var jwksConfiguration: JWKSCache.Configuration {
        JWKSCache.Configuration(source: jwksSource, forcedRefreshCooldown: jwksRefreshCooldown)
    }
}
