import Foundation
import Hummingbird
import JWTAuth
import NIOCore

/// `/.well-known/oauth-authorization-server` (RFC 8414) and `/.well-known/oauth-protected-resource[/mcp|/sse]`
/// (RFC 9728): how an MCP client discovers, from a 401, where to register and sign in.
///
/// Each MCP endpoint has its own protected resource metadata naming that endpoint's URL as `resource`, because clients
/// check that the resource is the URL they connected to (or a parent of it).
struct MetadataController {
    let configuration: GatewayConfiguration

    /// The authorization servers named in the protected resource metadata: the gateway itself, or the external
    /// one. Behind Cloudflare Access there is none: Access signs users in before requests arrive, so no metadata is
    /// served and clients never start an OAuth flow against the gateway.
    var authorizationServers: [String]? {
        switch configuration.mode {
        case .authorizationServer: [configuration.issuer]
        case .externalAuthorizationServer(let settings): [settings.issuer]
        case .cloudflareAccess: nil
        }
    }

    func addRoutes(to router: Router<GatewayRequestContext>) {
        guard let authorizationServers else { return }
        let streamable = Self.encode(
            protectedResourceMetadata(resource: configuration.resource, authorizationServers: authorizationServers))
        let legacy = Self.encode(
            protectedResourceMetadata(
                resource: configuration.publicURL + "/sse", authorizationServers: authorizationServers))
        router.get(".well-known/oauth-protected-resource") { _, _ in Self.response(streamable) }
        router.get(".well-known/oauth-protected-resource/mcp") { _, _ in Self.response(streamable) }
        router.get(".well-known/oauth-protected-resource/sse") { _, _ in Self.response(legacy) }
        guard case .authorizationServer = configuration.mode else { return }
        let authorizationServer = Self.encode(authorizationServerMetadata)
        router.get(".well-known/oauth-authorization-server") { _, _ in Self.response(authorizationServer) }
        // Some clients look the document up with the endpoint's path appended (as RFC 8414 §3.1 does for issuers
        // with paths).
        router.get(".well-known/oauth-authorization-server/mcp") { _, _ in Self.response(authorizationServer) }
        router.get(".well-known/oauth-authorization-server/sse") { _, _ in Self.response(authorizationServer) }
    }

    var authorizationServerMetadata: JSONValue {
        let base = configuration.publicURL
        var metadata: [String: JSONValue] = [
            "issuer": .string(configuration.issuer),
            "authorization_endpoint": .string(base + "/authorize"),
            "token_endpoint": .string(base + "/token"),
            "registration_endpoint": .string(base + "/register"),
            "revocation_endpoint": .string(base + "/revoke"),
            "scopes_supported": .array(GatewayScopes.supported.sorted.map(JSONValue.string)),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
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
        ]
        if case .authorizationServer(let settings) = configuration.mode {
            if settings.clientMetadataDocuments.enabled { metadata["client_id_metadata_document_supported"] = true }
            if !settings.identityAssertionIssuers.isEmpty {
                metadata["grant_types_supported"] = [
                    "authorization_code", "refresh_token", "client_credentials", .string(JWTBearerGrant.grantType),
                ]
            }
        }
        // DPoP-bound tokens on request (RFC 9449 §5.1).
        metadata["dpop_signing_alg_values_supported"] = .array(
            DPoPProof.algorithms.map(\.rawValue).sorted().map(JSONValue.string))
        // The keys of the tokens the gateway signs for TodosAPI.
        metadata["jwks_uri"] = .string(base + "/.well-known/jwks.json")
        return .object(metadata)
    }

    func protectedResourceMetadata(resource: String, authorizationServers: [String]) -> JSONValue {
        guard case .authorizationServer = configuration.mode else {
            return baseProtectedResourceMetadata(resource: resource, authorizationServers: authorizationServers)
        }
        // The gateway's own tokens may be DPoP-bound (RFC 9728 §2); they need not be.
        guard
            case .object(var metadata) = baseProtectedResourceMetadata(
                resource: resource, authorizationServers: authorizationServers)
        else { return [:] }
        metadata["dpop_signing_alg_values_supported"] = .array(
            DPoPProof.algorithms.map(\.rawValue).sorted().map(JSONValue.string))
        metadata["dpop_bound_access_tokens_required"] = false
        return .object(metadata)
    }

    private func baseProtectedResourceMetadata(resource: String, authorizationServers: [String]) -> JSONValue {
        [
            "resource": .string(resource),
            "authorization_servers": .array(authorizationServers.map(JSONValue.string)),
            "scopes_supported": .array(GatewayScopes.supported.sorted.map(JSONValue.string)),
            "bearer_methods_supported": ["header"],
            "resource_name": "Todos (MCP gateway)",
            "resource_documentation": .string(configuration.publicURL + "/"),
        ]
    }

    static func encode(_ value: JSONValue) -> ByteBuffer {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return ByteBuffer(bytes: (try? encoder.encode(value)) ?? Data())
    }

    static func response(_ body: ByteBuffer) -> Response {
        Response(
            status: .ok,
            headers: [.contentType: "application/json; charset=utf-8", .cacheControl: "public, max-age=3600"],
            body: .init(byteBuffer: body))
    }
}
