import Foundation
import Hummingbird
import JWTAuth
import Logging
import NIOCore
import ServiceSupport

/// `POST /register`: OAuth 2.0 Dynamic Client Registration (RFC 7591), how MCP clients introduce themselves.
///
/// Public clients (`token_endpoint_auth_method: none`, what MCP clients use) and confidential ones (the secret is
/// returned once and stored as a digest). Redirect URIs must be https, or http on a loopback host, without fragment.
struct RegistrationController {
    let store: any GatewayStore
    let clock: any WallClock

    static let bodyLimit = 16 * 1024
    static let maximumRedirectURIs = 10
    static let grantTypes: Set<String> = ["authorization_code", "refresh_token"]

    func addRoutes(to router: Router<GatewayRequestContext>) {
        router.post("register", use: register)
    }

    @Sendable func register(_ request: Request, context: GatewayRequestContext) async throws -> Response {
        guard request.mediaTypeIs("application/json") else {
            throw ErrorResponse.unsupportedMediaType("application/json")
        }
        let body = try await request.collectBody(limit: Self.bodyLimit)
        guard
            case .object(let metadata)? = try? JSONValue(parsing: body.readableBytesView)
        else { throw ErrorResponse.invalidClientMetadata("The body must be a JSON object of client metadata") }

        let redirectURIs = try Self.redirectURIs(metadata["redirect_uris"])
        let method = try Self.string(metadata, "token_endpoint_auth_method") ?? "client_secret_basic"
        guard let authMethod = RegisteredClient.AuthMethod(rawValue: method) else {
            throw ErrorResponse.invalidClientMetadata(
                "token_endpoint_auth_method must be none, client_secret_basic or client_secret_post")
        }
        let grantTypes = try Self.strings(metadata, "grant_types") ?? ["authorization_code", "refresh_token"]
        guard !grantTypes.isEmpty, grantTypes.contains("authorization_code"),
            Set(grantTypes).isSubset(of: Self.grantTypes)
        else {
            throw ErrorResponse.invalidClientMetadata(
                "grant_types must include authorization_code and may add refresh_token")
        }
        if let responseTypes = try Self.strings(metadata, "response_types"), responseTypes != ["code"] {
            throw ErrorResponse.invalidClientMetadata("response_types must be [\"code\"]")
        }
        if let scope = try Self.string(metadata, "scope") {
            let unsupported = ScopeSet(spaceSeparated: scope).subtracting(GatewayScopes.supported)
            guard unsupported.isEmpty else {
                throw ErrorResponse.invalidClientMetadata("Unsupported scope: \(unsupported)")
            }
        }
        let name = try Self.text(metadata, "client_name", limit: 200)
        let uri = try Self.webURL(metadata, "client_uri")
        let logo = try Self.webURL(metadata, "logo_uri")

        let secret = authMethod == .none ? nil : GatewayTokenFormat.newClientSecret()
        let client = RegisteredClient(
            id: GatewayTokenFormat.newClientID(), secretDigest: secret.map(SecretDigest.hex), authMethod: authMethod,
            name: name, uri: uri, logoURI: logo, redirectURIs: redirectURIs, grantTypes: grantTypes,
            createdAt: clock.now)
        try await store.insert(client: client)
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
        if let scope = try Self.string(metadata, "scope") { response["scope"] = .string(scope) }
        if let secret {
            response["client_secret"] = .string(secret)
            response["client_secret_expires_at"] = 0
        }
        return try JSONResponse.make(response, status: .created)
    }

    private static func redirectURIs(_ value: JSONValue?) throws -> [String] {
        guard let uris = value?.stringArrayValue, !uris.isEmpty else {
            throw ErrorResponse.invalidRedirectURI("redirect_uris is required: a non-empty array of URLs")
        }
        guard uris.count <= maximumRedirectURIs else {
            throw ErrorResponse.invalidRedirectURI("At most \(maximumRedirectURIs) redirect_uris may be registered")
        }
        for uri in uris {
            do { try RedirectURI.validate(uri) } catch {
                throw ErrorResponse.invalidRedirectURI("The redirect URI '\(uri.prefix(200))' \(error)")
            }
        }
        return uris
    }

    private static func string(_ metadata: [String: JSONValue], _ name: String) throws -> String? {
        guard let value = metadata[name], value != .null else { return nil }
        guard let text = value.stringValue else {
            throw ErrorResponse.invalidClientMetadata("\(name) must be a string")
        }
        return text
    }

    private static func strings(_ metadata: [String: JSONValue], _ name: String) throws -> [String]? {
        guard let value = metadata[name], value != .null else { return nil }
        guard let list = value.stringArrayValue else {
            throw ErrorResponse.invalidClientMetadata("\(name) must be an array of strings")
        }
        return list
    }

    private static func text(_ metadata: [String: JSONValue], _ name: String, limit: Int) throws -> String? {
        guard let text = try string(metadata, name)?.trimmingCharacters(in: .whitespacesAndNewlines), !text.isEmpty
        else { return nil }
        guard text.count <= limit, !text.unicodeScalars.contains(where: { CharacterSet.controlCharacters.contains($0) })
        else {
            throw ErrorResponse.invalidClientMetadata("\(name) must be at most \(limit) characters on one line")
        }
        return text
    }

    /// An https URL (http only on loopback), at most 2000 characters.
    private static func webURL(_ metadata: [String: JSONValue], _ name: String) throws -> String? {
        guard let text = try string(metadata, name) else { return nil }
        guard text.count <= 2000, let components = URLComponents(string: text), let host = components.host,
            !host.isEmpty,
            components.scheme == "https" || (components.scheme == "http" && RedirectURI.isLoopback(host: host))
        else { throw ErrorResponse.invalidClientMetadata("\(name) must be an https URL") }
        return text
    }
}
