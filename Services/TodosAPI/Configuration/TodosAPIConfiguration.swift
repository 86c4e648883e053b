import Foundation
import JWTAuth
import ServiceSupport

/// Everything TodosAPI reads from its environment (or `.dev.vars`). At least one way of authenticating callers must be
/// configured: bearer tokens of an OAuth issuer (`AUTH0_DOMAIN` / `OIDC_ISSUER`), bearer tokens the MCP gateway signs
/// (`GATEWAY_ISSUER`), Cloudflare Access assertions (`ACCESS_TEAM_DOMAIN` and `ACCESS_AUD`), or several of them.
struct TodosAPIConfiguration: Sendable {
    var host: String
    var port: Int
    /// Bearer access tokens of the identity provider: whose, and for which audiences. `nil` when it is not trusted
    /// directly (only the gateway's tokens, or only Access assertions, are accepted).
    var tokens: TokenSettings?
    /// Bearer access tokens the MCP gateway signs for its users (`GATEWAY_ISSUER`); `nil` unless configured.
    var gateway: TokenSettings? = nil
    /// Cloudflare Access assertions. `nil` unless `ACCESS_TEAM_DOMAIN` is set.
    var access: AccessSettings?
    /// Tolerance for clock skew.
    var leeway: TimeInterval
    /// The shortest time between two JWKS refreshes forced by unknown key ids.
    var jwksRefreshCooldown: TimeInterval
    /// The SQLite file.
    var databasePath: String
    /// `METRICS_TOKEN`, required by `/metrics` when set.
    var metricsToken: String? = nil
    /// `METRICS_ENABLED`.
    var metricsEnabled = true

    /// Which bearer tokens TodosAPI accepts.
    struct TokenSettings: Sendable, Equatable {
        /// The issuer tokens must come from, e.g. `https://acme.us.auth0.com/`.
        var issuer: String
        /// The audiences tokens may be meant for (`AUTH0_AUDIENCE`, comma-separated).
        var audiences: Set<String>
        /// Where the issuer's signing keys are: `JWKS_URL`, else OIDC discovery.
        var jwksSource: JWKSSource
        /// The `typ` headers accepted.
        var acceptedTypes: Set<String> = JWTVerifier.accessTokenTypes
        /// Whether a token without `typ` is refused (the gateway's tokens always carry `at+jwt`).
        var requiresType = false
    }

    /// The `typ` of the gateway's tokens (RFC 9068): an ID token or any other JWT of the gateway does not pass for one.
    static let gatewayTokenTypes: Set<String> = ["at+jwt", "application/at+jwt"]

    /// Which Cloudflare Access assertions TodosAPI accepts, and what their users may do.
    struct AccessSettings: Sendable, Equatable {
        /// `https://<team>.cloudflareaccess.com`, the assertions' issuer.
        var teamDomain: String
        /// The AUD tag(s) of TodosAPI's own Access application.
        var audiences: Set<String>
        /// The scopes a caller authenticated by Access has: Access policies decide who gets in, not what they may do.
        var scopes: ScopeSet
    }

    /// The issuer whose subjects owned the todos of a database from before owners had an issuer: the provider, else
    /// Cloudflare Access. Empty when TodosAPI trusts the gateway alone: the gateway's tokens name the issuer of their
    /// subject (the provider it signs users in with, which TodosAPI is not told of), so such owners are left for the
    /// first issuer that presents their subject to take (``SQLiteTodoRepository``).
    var legacyOwnerIssuer: String {
        tokens?.issuer ?? access?.teamDomain ?? ""
    }

    static let realm = "todos-api"
    static let apiScopes: ScopeSet = ["read:todos", "write:todos", "read:billing"]

    static func load(from settings: Settings) throws(ConfigurationError) -> TodosAPIConfiguration {
        let access = try loadAccess(from: settings)
        let gateway = try loadGateway(from: settings)
        // The provider's tokens are optional only when the gateway's, or Access assertions, are accepted.
        let tokens: TokenSettings? =
            (access != nil || gateway != nil) && settings.string("AUTH0_DOMAIN") == nil
                && settings.string("OIDC_ISSUER") == nil
            ? nil : try loadTokens(from: settings)
        let leeway = try settings.duration("JWT_LEEWAY", default: 60, in: 0...600)
        return TodosAPIConfiguration(
            host: settings.string("HOST", default: "127.0.0.1"),
            port: try settings.integer("PORT", default: 8789, in: 1...65535),
            tokens: tokens,
            gateway: gateway,
            access: access,
            leeway: leeway,
            jwksRefreshCooldown: try jwksRefreshCooldown(settings, keys: [tokens?.jwksSource, gateway?.jwksSource]),
            databasePath: settings.string("TODOS_DATABASE", default: ".data/todos.sqlite"),
            metricsToken: try settings.metricsToken(),
            metricsEnabled: try settings.metricsEnabled())
    }

    /// `JWKS_REFRESH_COOLDOWN`: 0 (no limit on the refetches that unknown `kid`s force) is for tests against keys
    /// served on this machine only; against a real provider, anyone could make TodosAPI hammer it.
    private static func jwksRefreshCooldown(_ settings: Settings, keys: [JWKSSource?]) throws(ConfigurationError)
        -> TimeInterval
    {
        let cooldown = try settings.duration("JWKS_REFRESH_COOLDOWN", default: 5, in: 0...3600)
        let keysURLs: [String] = keys.compactMap { source in
            switch source {
            case .url(let url)?: url
            case .wellKnown(let issuer)?, .discovery(let issuer)?: issuer
            case nil: nil
            }
        }
        if cooldown < 1, let keysURL = keysURLs.first(where: { !PlainHTTPRule.isLoopback($0) }) {
            throw ConfigurationError(
                variable: "JWKS_REFRESH_COOLDOWN",
                problem: "must be at least 1s unless the issuer is on this machine (it limits the key refetches that"
                    + " tokens naming unknown keys force on the provider)",
                example: "5s")
        }
        return cooldown
    }

    private static func loadTokens(from settings: Settings) throws(ConfigurationError) -> TokenSettings {
        let issuer = try settings.issuer()
        // OIDC_AUDIENCE is the generic name, AUTH0_AUDIENCE the Auth0 demo's (an Auth0 API's identifier).
        let audienceSetting = try settings.oneOf(["OIDC_AUDIENCE", "AUTH0_AUDIENCE"])
        let audiences = audienceSetting.map { settings.list($0.name, default: []) } ?? ["urn:todos-api"]
        guard !audiences.isEmpty else {
            throw ConfigurationError(
                variable: audienceSetting?.name ?? "AUTH0_AUDIENCE", problem: "names no audience",
                example: "urn:todos-api")
        }
        let jwksSource: JWKSSource =
            if settings.string("JWKS_URL") != nil {
                .url(try settings.url("JWKS_URL", example: "https://acme.us.auth0.com/.well-known/jwks.json"))
            } else {
                .discovery(issuer: issuer)
            }
        return TokenSettings(issuer: issuer, audiences: Set(audiences), jwksSource: jwksSource)
    }

    /// `GATEWAY_ISSUER`: the MCP gateway's public URL, the `iss` of the tokens it signs for its users. Their audience
    /// is `GATEWAY_AUDIENCE` (by default the audiences of the provider's tokens, else `urn:todos-api`), their keys at
    /// `GATEWAY_JWKS_URL` (by default `<GATEWAY_ISSUER>/.well-known/jwks.json`).
    private static func loadGateway(from settings: Settings) throws(ConfigurationError) -> TokenSettings? {
        guard settings.string("GATEWAY_ISSUER") != nil else {
            for name in ["GATEWAY_AUDIENCE", "GATEWAY_JWKS_URL"] where settings.string(name) != nil {
                throw ConfigurationError(
                    variable: "GATEWAY_ISSUER", problem: "is missing (\(name) is set)",
                    example: "https://mcp.example.com")
            }
            return nil
        }
        var issuer = try settings.url("GATEWAY_ISSUER", example: "https://mcp.example.com")
        // The gateway's issuer is its PUBLIC_URL, which it writes without a trailing slash.
        while issuer.hasSuffix("/") { issuer.removeLast() }
        try PlainHTTPRule.check(issuer, variable: "GATEWAY_ISSUER", example: "https://mcp.example.com")
        var audienceSetting = try settings.oneOf(["GATEWAY_AUDIENCE"])
        if audienceSetting == nil { audienceSetting = try settings.oneOf(["OIDC_AUDIENCE", "AUTH0_AUDIENCE"]) }
        let audiences = audienceSetting.map { settings.list($0.name, default: []) } ?? ["urn:todos-api"]
        guard !audiences.isEmpty else {
            throw ConfigurationError(
                variable: audienceSetting?.name ?? "GATEWAY_AUDIENCE", problem: "names no audience",
                example: "urn:todos-api")
        }
        let jwks = try settings.url(
            "GATEWAY_JWKS_URL", default: issuer + "/.well-known/jwks.json",
            example: "https://mcp.example.com/.well-known/jwks.json")
        return TokenSettings(
            issuer: issuer, audiences: Set(audiences), jwksSource: .url(jwks), acceptedTypes: gatewayTokenTypes,
            requiresType: true)
    }

    private static func loadAccess(from settings: Settings) throws(ConfigurationError) -> AccessSettings? {
        guard let team = settings.string("ACCESS_TEAM_DOMAIN") else {
            if settings.string("ACCESS_AUD") != nil {
                throw ConfigurationError(
                    variable: "ACCESS_TEAM_DOMAIN", problem: "is missing (ACCESS_AUD is set)",
                    example: "https://your-team.cloudflareaccess.com")
            }
            return nil
        }
        let audiences = settings.list("ACCESS_AUD", default: [])
        guard !audiences.isEmpty else {
            throw ConfigurationError(
                variable: "ACCESS_AUD", problem: "is missing (the AUD tag of TodosAPI's Access application)",
                example: "4714c1358e65fe4b408ad6d432a5f878f08194bdb4752441fd56faefa9b2b6f2")
        }
        let scopes = ScopeSet(spaceSeparated: settings.string("ACCESS_SCOPES", default: apiScopes.description))
        guard apiScopes.isSuperset(of: scopes) else {
            throw ConfigurationError(
                variable: "ACCESS_SCOPES", problem: "must list scopes from \(apiScopes)",
                example: "read:todos write:todos")
        }
        return AccessSettings(
            teamDomain: try AccessTeamDomain.issuer(from: team, variable: "ACCESS_TEAM_DOMAIN"),
            audiences: Set(audiences), scopes: scopes)
    }

    func verifierConfiguration(_ tokens: TokenSettings) -> JWTVerifier.Configuration {
        JWTVerifier.Configuration(
            issuer: tokens.issuer, audiences: tokens.audiences, leeway: leeway, cacheCapacity: 10_000,
            acceptedTypes: tokens.acceptedTypes, requiresType: tokens.requiresType)
    }

    func jwksConfiguration(_ source: JWKSSource) -> JWKSCache.Configuration {
        JWKSCache.Configuration(source: source, forcedRefreshCooldown: jwksRefreshCooldown)
    }
}
