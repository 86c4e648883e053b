import Foundation
import JWTAuth
import ServiceSupport

/// The OpenID Connect provider users sign in with (Auth0, DevIdP, Okta, Keycloak, …), in the seed's variable names.
struct UpstreamConfiguration: Sendable {
    /// The provider's issuer: `https://<AUTH0_DOMAIN>/`, or `OIDC_ISSUER` verbatim.
    var issuer: String
    var clientID: String
    var clientSecret: String
    /// The API audience to request (`AUTH0_AUDIENCE`), which TodosAPI accepts.
    var audience: String
    /// Scopes always requested (`AUTH0_SCOPE`); the API scopes an MCP client asks for are added.
    var scope: ScopeSet
    /// A name for the consent page, e.g. "Auth0" or "DevIdP".
    var displayName: String

    static func load(from settings: Settings) throws(ConfigurationError) -> UpstreamConfiguration {
        let issuer: String
        if settings.string("OIDC_ISSUER") != nil {
            issuer = try settings.url("OIDC_ISSUER", example: "https://keycloak.example.com/realms/demo")
        } else {
            issuer = try Auth0Domain.issuer(from: try settings.required("AUTH0_DOMAIN", example: "acme.us.auth0.com"))
        }
        let audiences = settings.list("AUTH0_AUDIENCE", default: ["urn:todos-api"])
        return UpstreamConfiguration(
            issuer: issuer,
            clientID: try settings.required("AUTH0_CLIENT_ID", example: "your-auth0-application-client-id"),
            clientSecret: try settings.required("AUTH0_CLIENT_SECRET", example: "your-auth0-application-client-secret"),
            audience: audiences.first ?? "urn:todos-api",
            scope: ScopeSet(
                spaceSeparated: settings.string(
                    "AUTH0_SCOPE", default: "openid email profile offline_access read:todos")),
            displayName: settings.string("IDP_NAME") ?? defaultName(for: issuer))
    }

    private static func defaultName(for issuer: String) -> String {
        let host = URLComponents(string: issuer)?.host ?? issuer
        if host.hasSuffix("auth0.com") { return "Auth0" }
        if host.hasSuffix("cloudflareaccess.com") { return "Cloudflare Access" }
        if host == "localhost" || host == "127.0.0.1" { return "DevIdP (development)" }
        return host
    }
}
