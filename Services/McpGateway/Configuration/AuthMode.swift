import Foundation
import JWTAuth
import ServiceSupport

/// How the gateway authenticates MCP clients: one setting, `AUTH_MODE`, selects it; the tools, sessions and the
/// TodosAPI client are the same in every mode.
enum AuthMode: Sendable {
    /// `AUTH_MODE=gateway` (default): the gateway is the OAuth 2.1 authorization server for MCP clients and signs
    /// users in with an upstream OpenID Connect provider.
    case authorizationServer(AuthorizationServerSettings)
    /// `AUTH_MODE=external`: another authorization server (Auth0, …) issues JWT access tokens for the MCP resource; the
    /// gateway is only a resource server.
    case externalAuthorizationServer(ExternalAuthorizationServerSettings)
    /// `AUTH_MODE=access`: Cloudflare Access authenticates every request before it reaches the gateway and passes
    /// the user's identity in `Cf-Access-Jwt-Assertion`.
    case cloudflareAccess(CloudflareAccessSettings)

    /// Whether the provider's own access tokens can serve TodosAPI: in `AUTH_MODE=gateway`, when the provider grants
    /// the API's scopes itself (no `GRANTED_SCOPES`: Auth0 with an API audience, Okta or Keycloak with custom
    /// scopes); not for providers that only sign users in (Google, GitHub, Access for SaaS, opaque tokens). `nil` in
    /// the modes without a provider token.
    var upstreamCanServeAPI: Bool? {
        guard case .authorizationServer(let settings) = self else { return nil }
        return settings.upstream.grantedScopes == nil
    }

    var name: String {
        switch self {
        case .authorizationServer: "gateway"
        case .externalAuthorizationServer: "external"
        case .cloudflareAccess: "access"
        }
    }

    /// One line for the start-up log.
    var signInSummary: String {
        switch self {
        case .authorizationServer(let settings): "users sign in with \(settings.upstream.issuer)"
        case .externalAuthorizationServer(let settings): "access tokens of \(settings.issuer) accepted"
        case .cloudflareAccess(let settings): "Cloudflare Access assertions of \(settings.teamDomain) accepted"
        }
    }

    /// The issuer whose namespace the users' subjects are in: the provider users sign in with, the authorization
    /// server whose tokens are accepted, or the Access team. Downstream tokens name it (`sub_id`), so that TodosAPI
    /// keeps the users of different issuers apart.
    var subjectIssuer: String {
        switch self {
        case .authorizationServer(let settings): settings.upstream.issuer
        case .externalAuthorizationServer(let settings): settings.issuer
        case .cloudflareAccess(let settings): settings.teamDomain
        }
    }

    static func load(from settings: Settings, resources: [String]) throws(ConfigurationError) -> AuthMode {
        switch settings.string("AUTH_MODE", default: "gateway").lowercased() {
        case "gateway": return .authorizationServer(try AuthorizationServerSettings.load(from: settings))
        case "external":
            return .externalAuthorizationServer(
                try ExternalAuthorizationServerSettings.load(from: settings, resources: resources))
        case "access": return .cloudflareAccess(try CloudflareAccessSettings.load(from: settings))
        default:
            throw ConfigurationError(
                variable: "AUTH_MODE", problem: "must be gateway, external or access", example: "gateway")
        }
    }
}

/// `AUTH_MODE=gateway`: the gateway's own authorization server and its upstream provider.
struct AuthorizationServerSettings: Sendable {
    var upstream: UpstreamConfiguration
    /// Secret for signing cookies (approvals, CSRF): `COOKIE_ENCRYPTION_KEY`, as in the Cloudflare demo.
    var cookieSecret: String
    var accessTokenLifetime: TimeInterval
    var grantLifetime: TimeInterval
    /// `REFRESH_TOKEN_REUSE_INTERVAL`: how long after a rotation the refresh token it replaced is still accepted, for a
    /// client that lost the response (see ``RefreshRotation``). `0` accepts no retry.
    var refreshTokenReuseInterval: TimeInterval
    /// `UNUSED_CLIENT_TTL`: registered clients that never obtained a grant are deleted after this long.
    var unusedClientLifetime: TimeInterval
    var clientMetadataDocuments: ClientMetadataDocumentSettings
    /// `IDENTITY_ASSERTION_ISSUERS`: the enterprise identity providers whose identity assertions (ID-JAG) `/token`
    /// accepts with the JWT-bearer grant; none by default.
    var identityAssertionIssuers: [String] = []
    /// `DPOP_NONCE_REQUIRED`: DPoP proofs must carry a nonce the gateway issued (RFC 9449 §8), handed out in
    /// `DPoP-Nonce`; by default no nonce is handed out, and one a proof carries anyway must be the gateway's.
    var dpopNonceRequired = false

    static func load(from settings: Settings) throws(ConfigurationError) -> AuthorizationServerSettings {
        let issuers = settings.list("IDENTITY_ASSERTION_ISSUERS", default: [])
        for issuer in issuers {
            guard let url = URLComponents(string: issuer), url.scheme == "https" || url.scheme == "http",
                url.host?.isEmpty == false, url.query == nil, url.fragment == nil
            else {
                throw ConfigurationError(
                    variable: "IDENTITY_ASSERTION_ISSUERS",
                    problem: "must list issuer URLs, comma-separated ('\(issuer)' is not one)",
                    example: "https://acme.okta.com")
            }
            try PlainHTTPRule.check(issuer, variable: "IDENTITY_ASSERTION_ISSUERS", example: "https://acme.okta.com")
        }
        return AuthorizationServerSettings(
            upstream: try UpstreamConfiguration.load(from: settings),
            cookieSecret: try GatewayConfiguration.secret(settings, "COOKIE_ENCRYPTION_KEY"),
            accessTokenLifetime: try settings.duration("ACCESS_TOKEN_TTL", default: 3600, in: 1...86_400),
            grantLifetime: try settings.duration("GRANT_TTL", default: 30 * 86_400, in: 3600...365 * 86_400),
            refreshTokenReuseInterval: try settings.duration("REFRESH_TOKEN_REUSE_INTERVAL", default: 60, in: 0...3600),
            unusedClientLifetime: try settings.duration(
                "UNUSED_CLIENT_TTL", default: 86_400, in: 600...365 * 86_400),
            clientMetadataDocuments: try ClientMetadataDocumentSettings.load(from: settings),
            identityAssertionIssuers: issuers,
            dpopNonceRequired: try settings.boolean("DPOP_NONCE_REQUIRED", default: false))
    }
}

/// Client ID Metadata Documents (MCP 2025-11-25): clients whose `client_id` is the https URL of their metadata.
struct ClientMetadataDocumentSettings: Sendable {
    /// `CLIENT_ID_METADATA_DOCUMENTS`: whether such client ids are accepted (and advertised in the metadata).
    var enabled = true
    /// `CLIENT_ID_METADATA_ALLOW_PRIVATE`: for development only, documents may be fetched from loopback and private
    /// addresses, and over plain http from loopback.
    var allowPrivateAddresses = false

    static func load(from settings: Settings) throws(ConfigurationError) -> ClientMetadataDocumentSettings {
        let allowPrivate = try settings.boolean("CLIENT_ID_METADATA_ALLOW_PRIVATE", default: false)
        // Development only: on a gateway the internet can reach, it would let anyone make it fetch internal URLs.
        if allowPrivate, !PlainHTTPRule.isLoopback(settings.string("PUBLIC_URL", default: "http://localhost:8788")) {
            throw ConfigurationError(
                variable: "CLIENT_ID_METADATA_ALLOW_PRIVATE",
                problem: "is for development on this machine only, and PUBLIC_URL is not a loopback URL",
                example: "false")
        }
        return ClientMetadataDocumentSettings(
            enabled: try settings.boolean("CLIENT_ID_METADATA_DOCUMENTS", default: true),
            allowPrivateAddresses: allowPrivate)
    }
}

/// `AUTH_MODE=external`: which tokens of which authorization server `/mcp` accepts.
struct ExternalAuthorizationServerSettings: Sendable {
    /// The authorization server's issuer, named in the protected resource metadata.
    var issuer: String
    /// Accepted `aud` values: the gateway's resource URLs (`<PUBLIC_URL>/mcp`, `<PUBLIC_URL>/sse`) unless `MCP_AUDIENCE`
    /// says otherwise.
    var audiences: Set<String>
    var jwksSource: JWKSSource

    static func load(from settings: Settings, resources: [String]) throws(ConfigurationError)
        -> ExternalAuthorizationServerSettings
    {
        let issuer = try settings.issuer()
        let jwksSource: JWKSSource =
            if settings.string("JWKS_URL") != nil {
                .url(try settings.url("JWKS_URL", example: "https://acme.us.auth0.com/.well-known/jwks.json"))
            } else {
                .discovery(issuer: issuer)
            }
        return ExternalAuthorizationServerSettings(
            issuer: issuer, audiences: Set(settings.list("MCP_AUDIENCE", default: resources)), jwksSource: jwksSource)
    }
}

/// `AUTH_MODE=access`: the Cloudflare Access application in front of the gateway (the variable names of Cloudflare's
/// `mcp-access-self-hosted` demo).
struct CloudflareAccessSettings: Sendable {
    /// `https://<team>.cloudflareaccess.com`: the issuer of Access assertions.
    var teamDomain: String
    /// The Access application's AUD tag(s).
    var audiences: Set<String>
    /// The scopes a user Access let in has on the tools (Access policies decide who gets in, not what they may do).
    var scopes: ScopeSet

    /// Where Access publishes its signing keys.
    var certsURL: String { CloudflareAccess.certsURL(teamDomain: teamDomain) }

    static func load(from settings: Settings) throws(ConfigurationError) -> CloudflareAccessSettings {
        let team = try AccessTeamDomain.issuer(
            from: try settings.required("TEAM_DOMAIN", example: "https://your-team.cloudflareaccess.com"),
            variable: "TEAM_DOMAIN")
        let audiences = settings.list("POLICY_AUD", default: [])
        guard !audiences.isEmpty else {
            throw ConfigurationError(
                variable: "POLICY_AUD", problem: "is missing (the AUD tag of the Access application)",
                example: "4714c1358e65fe4b408ad6d432a5f878f08194bdb4752441fd56faefa9b2b6f2")
        }
        return CloudflareAccessSettings(
            teamDomain: team, audiences: Set(audiences),
            scopes: ScopeSet(spaceSeparated: settings.string("ACCESS_SCOPES", default: GatewayScopes.api.description)))
    }
}
