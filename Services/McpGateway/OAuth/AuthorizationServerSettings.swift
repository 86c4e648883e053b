import Foundation
import JWTAuth
import ServiceSupport

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
            cookieSecret: try settings.requiredSecret("COOKIE_ENCRYPTION_KEY"),
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
