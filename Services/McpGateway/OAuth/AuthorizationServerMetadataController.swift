import Hummingbird
import JSON
import JWTAuth
import ServiceSupport

/// `/.well-known/oauth-authorization-server` (RFC 8414): where an MCP client, having found the gateway in the
/// protected resource metadata, registers, signs its user in and gets tokens. Served in `AUTH_MODE=gateway` only.
struct AuthorizationServerMetadataController {
    let address: GatewayAddress
    let settings: AuthorizationServerSettings
    let scopes: GatewayScopes

    func addRoutes(to router: Router<GatewayRequestContext>) {
        let document = StaticJSONDocument(metadata)
        router.get(".well-known/oauth-authorization-server") { _, _ in document.response }
        // Some clients look the document up with the endpoint's path appended (as RFC 8414 §3.1 does for issuers
        // with paths).
        router.get(".well-known/oauth-authorization-server/mcp") { _, _ in document.response }
        router.get(".well-known/oauth-authorization-server/sse") { _, _ in document.response }
    }

    var metadata: JSONValue {
        let base = address.publicURL
        var grantTypes: [JSONValue] = ["authorization_code", "refresh_token", "client_credentials"]
        if !settings.identityAssertionIssuers.isEmpty { grantTypes.append(.string(GrantType.jwtBearer)) }
        var metadata: [String: JSONValue] = [
            "issuer": .string(address.issuer),
            "authorization_endpoint": .string(base + "/authorize"),
            "token_endpoint": .string(base + "/token"),
            "registration_endpoint": .string(base + "/register"),
            "revocation_endpoint": .string(base + "/revoke"),
            "scopes_supported": .array(scopes.supported.sorted.map(JSONValue.string)),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": .array(grantTypes),
            "token_endpoint_auth_methods_supported": [
                "none", "client_secret_basic", "client_secret_post", "private_key_jwt",
            ],
            "token_endpoint_auth_signing_alg_values_supported": .array(
                SignatureAlgorithm.all.map { .string($0.rawValue) }),
            "revocation_endpoint_auth_methods_supported": [
                "none", "client_secret_basic", "client_secret_post", "private_key_jwt",
            ],
            "code_challenge_methods_supported": ["S256"],
            "authorization_response_iss_parameter_supported": true,
            "service_documentation": .string(base + "/"),
            // DPoP-bound tokens on request (RFC 9449 §5.1).
            "dpop_signing_alg_values_supported": .array(
                DPoPChecker.algorithmNames.map(JSONValue.string)),
            // The keys of the tokens the gateway signs for TodosAPI.
            "jwks_uri": .string(base + "/.well-known/jwks.json"),
        ]
        if settings.clientMetadataDocuments.enabled { metadata["client_id_metadata_document_supported"] = true }
        return .object(metadata)
    }
}
