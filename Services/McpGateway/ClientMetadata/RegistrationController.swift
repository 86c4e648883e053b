import Foundation
import Hummingbird
import JSON
import JWTAuth
import Logging
import NIOCore
import ServiceSupport

/// `POST /register`: OAuth 2.0 Dynamic Client Registration (RFC 7591), how MCP clients introduce themselves.
///
/// Public clients (`token_endpoint_auth_method: none`, what MCP clients use) and confidential ones (the secret is
/// returned once and stored as a digest). Redirect URIs must be https, or http on a loopback host, without fragment.
struct RegistrationController {
    let clients: any ClientStore
    let scopes: GatewayScopes
    let clock: any WallClock
    let random: any RandomSource

    static let bodyLimit = 16 * 1024

    func addRoutes(to router: some RouterMethods<GatewayRequestContext>) {
        router.post("register", use: register)
    }

    @Sendable func register(_ request: Request, context: GatewayRequestContext) async throws -> Response {
        guard request.mediaTypeIs("application/json") else {
            // RFC 7591 §3.2.2 has no code for a wrong media type; a 415 is not an error registration clients report.
            throw ErrorResponse.invalidClientMetadata("Send the client metadata as an application/json body")
        }
        let body = try await request.collectBody(limit: Self.bodyLimit)
        guard
            case .object(let metadata)? = try? JSONValue(parsing: body.readableBytesView)
        else { throw ErrorResponse.invalidClientMetadata("The body must be a JSON object of client metadata") }

        let rules = ClientMetadataRules(metadata: metadata, supportedScopes: scopes.supported)
        let redirectURIs = try rules.redirectURIs()
        let method = try rules.string("token_endpoint_auth_method") ?? "client_secret_basic"
        guard let authMethod = RegisteredClient.AuthMethod(rawValue: method), authMethod != .privateKeyJWT else {
            throw ErrorResponse.invalidClientMetadata(
                "token_endpoint_auth_method must be none, client_secret_basic or client_secret_post (clients with"
                    + " private_key_jwt are registered by the gateway's operator: McpGateway admin add-client)")
        }
        let grantTypes = try rules.grantTypes()
        try rules.checkResponseTypesAndScope()
        let name = try rules.name()
        let uri = try rules.webURL("client_uri")
        let logo = try rules.webURL("logo_uri")

        let secret = authMethod == .none ? nil : GatewayTokenFormat.newClientSecret(from: random)
        let client = RegisteredClient(
            id: GatewayTokenFormat.newClientID(from: random), secretDigest: secret.map(SecretDigest.hex), authMethod: authMethod,
            name: name, uri: uri, logoURI: logo, redirectURIs: redirectURIs, grantTypes: grantTypes,
            createdAt: clock.now)
        try await clients.insert(client: client)
        context.logger.info(
            "Client registered", metadata: ["oauth.client_id": "\(client.id)", "oauth.client_name": "\(name ?? "")"])

        var response: [String: JSONValue] = [
            "client_id": .string(client.id),
            "client_id_issued_at": .integer(Int64(client.createdAt.timeIntervalSince1970)),
            "redirect_uris": .array(redirectURIs.map(JSONValue.string)), "token_endpoint_auth_method": .string(method),
            "grant_types": .array(grantTypes.map(JSONValue.string)), "response_types": ["code"],
        ]
        if let name { response["client_name"] = .string(name) }
        if let uri { response["client_uri"] = .string(uri) }
        if let logo { response["logo_uri"] = .string(logo) }
        if let scope = try rules.string("scope") { response["scope"] = .string(scope) }
        if let secret {
            response["client_secret"] = .string(secret)
            response["client_secret_expires_at"] = 0
        }
        return try JSONResponse.make(response, status: .created)
    }
}
