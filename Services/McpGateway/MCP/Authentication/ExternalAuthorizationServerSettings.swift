import Foundation
import JWTAuth
import ServiceSupport

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
