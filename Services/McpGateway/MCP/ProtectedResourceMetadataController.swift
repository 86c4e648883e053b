import Hummingbird
import JSON
import JWTAuth
import ServiceSupport

/// `/.well-known/oauth-protected-resource[/mcp|/sse]` (RFC 9728): how an MCP client learns, from a 401, which
/// authorization server issues tokens for the gateway.
///
/// Each MCP endpoint has its own document naming that endpoint's URL as `resource`, because clients check that the
/// resource is the URL they connected to (or a parent of it). Behind Cloudflare Access none is served: Access signs
/// users in before requests arrive, and clients never start an OAuth flow against the gateway.
struct ProtectedResourceMetadataController {
    let address: GatewayAddress
    /// The gateway itself (`AUTH_MODE=gateway`), or the external authorization server.
    let authorizationServers: [String]
    /// The scopes of the tools (`scopes_supported`).
    let scopes: GatewayScopes
    /// Whether the tokens may be DPoP-bound: the gateway's own are on request (RFC 9728 §2); they need not be.
    let dpopBoundTokens: Bool

    func addRoutes(to router: Router<GatewayRequestContext>) {
        let streamable = StaticJSONDocument(metadata(resource: address.resource))
        let legacy = StaticJSONDocument(metadata(resource: address.publicURL + "/sse"))
        router.get(".well-known/oauth-protected-resource") { _, _ in streamable.response }
        router.get(".well-known/oauth-protected-resource/mcp") { _, _ in streamable.response }
        router.get(".well-known/oauth-protected-resource/sse") { _, _ in legacy.response }
    }

    func metadata(resource: String) -> JSONValue {
        var metadata: [String: JSONValue] = [
            "resource": .string(resource),
            "authorization_servers": .array(authorizationServers.map(JSONValue.string)),
            "scopes_supported": .array(scopes.supported.sorted.map(JSONValue.string)),
            "bearer_methods_supported": ["header"],
            "resource_name": "Todos (MCP gateway)",
            "resource_documentation": .string(address.publicURL + "/"),
        ]
        if dpopBoundTokens {
            metadata["dpop_signing_alg_values_supported"] = .array(
                DPoPChecker.algorithmNames.map(JSONValue.string))
            metadata["dpop_bound_access_tokens_required"] = false
        }
        return .object(metadata)
    }
}
