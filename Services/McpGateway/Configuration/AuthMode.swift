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
