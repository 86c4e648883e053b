import Foundation
import Hummingbird
import JSON
import JWTAuth
import NIOCore
import ServiceSupport

/// `/.well-known/openid-configuration` (also at `/.well-known/oauth-authorization-server`) and
/// `/.well-known/jwks.json`, at the same paths as an Auth0 tenant.
struct DiscoveryController {
    let configuration: DevIdPConfiguration
    let signingKey: RSASigningKey

    func addRoutes(to router: Router<DevIdPRequestContext>) {
        // Browser-based clients read them from other origins.
        let discovery = StaticJSONDocument(metadata, maxAge: 3600, headers: [.accessControlAllowOrigin: "*"])
        let jwks = StaticJSONDocument(
            ["keys": [.object(signingKey.publicJWK)]], maxAge: 600, headers: [.accessControlAllowOrigin: "*"])
        router.get(".well-known/openid-configuration") { _, _ in discovery.response }
        // Auth0 serves the same document as RFC 8414 authorization server metadata, which is where MCP clients look
        // first when DevIdP plays Auth0 as their authorization server (AUTH_MODE=external).
        router.get(".well-known/oauth-authorization-server") { _, _ in discovery.response }
        router.get(".well-known/jwks.json") { _, _ in jwks.response }
    }

    var metadata: JSONValue {
        let issuer = configuration.issuer
        let scopes = DevIdPConfiguration.oidcScopes + configuration.apiPermissions
        return [
            "issuer": .string(issuer),
            "authorization_endpoint": .string(issuer + "authorize"),
            "token_endpoint": .string(issuer + "oauth/token"),
            "userinfo_endpoint": .string(configuration.userinfoAudience),
            "jwks_uri": .string(issuer + ".well-known/jwks.json"),
            "registration_endpoint": .string(issuer + "oidc/register"),
            "revocation_endpoint": .string(issuer + "oauth/revoke"),
            "scopes_supported": .array(scopes.map(JSONValue.string)),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials", "password"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
            "code_challenge_methods_supported": ["S256"],
            "claims_supported": [
                "aud", "auth_time", "email", "email_verified", "exp", "iat", "iss", "name", "nickname",
                "nonce", "sub",
            ],
            // Not a registered metadata name: DevIdP says how long a rotated refresh token is accepted again
            // (DEVIDP_REFRESH_REUSE_INTERVAL), so that a gateway can check it against its own deadlines at start-up.
            "refresh_token_reuse_interval": .integer(Int64(configuration.refreshReuseInterval.rounded(.down))),
        ]
    }
}
