/// Where an issuer publishes its signing keys.
public enum JWKSSource: Sendable, Equatable, CustomStringConvertible {
    /// An explicit JWKS URL, e.g. Cloudflare Access's `https://TEAM.cloudflareaccess.com/cdn-cgi/access/certs`.
    case url(String)
    /// `<issuer>.well-known/jwks.json`, where Auth0 publishes its keys.
    case wellKnown(issuer: String)
    /// The `jwks_uri` of `<issuer>.well-known/openid-configuration` (OpenID Connect Discovery): works with any OIDC
    /// provider (Auth0, Okta, Keycloak, Google, Cloudflare Access for SaaS).
    case discovery(issuer: String)

    public var description: String {
        switch self {
        case .url(let url): url
        case .wellKnown(let issuer): Self.join(issuer, ".well-known/jwks.json")
        case .discovery(let issuer): Self.join(issuer, ".well-known/openid-configuration")
        }
    }

    /// `base` and a relative path with exactly one slash between them.
    static func join(_ base: String, _ path: String) -> String {
        base.hasSuffix("/") ? base + path : base + "/" + path
    }
}
