import Foundation
import JSON
import JWTAuth
import ServiceSupport

/// The rules every client's metadata must follow, whether the client registered it at `/register` (RFC 7591) or
/// publishes it in a Client ID Metadata Document. Violations are `invalid_client_metadata` or `invalid_redirect_uri`
/// errors with a sentence saying what is wrong.
struct ClientMetadataRules {
    let metadata: [String: JSONValue]
    /// The scopes a client may name (``GatewayScopes/supported``).
    let supportedScopes: ScopeSet

    static let maximumRedirectURIs = 10
    static let grantTypes: Set<String> = ["authorization_code", "refresh_token"]

    /// `redirect_uris`: required, at most ten, each https or loopback http, without fragment.
    func redirectURIs() throws -> [String] {
        guard let uris = metadata["redirect_uris"]?.stringArrayValue, !uris.isEmpty else {
            throw ErrorResponse.invalidRedirectURI("redirect_uris is required: a non-empty array of URLs")
        }
        guard uris.count <= Self.maximumRedirectURIs else {
            throw ErrorResponse.invalidRedirectURI(
                "At most \(Self.maximumRedirectURIs) redirect_uris may be registered")
        }
        for uri in uris {
            do { try RedirectURI.validate(uri) } catch {
                throw ErrorResponse.invalidRedirectURI("The redirect URI '\(uri.prefix(200))' \(error)")
            }
        }
        return uris
    }

    /// `grant_types`: `authorization_code`, optionally with `refresh_token` (the default is both).
    func grantTypes() throws -> [String] {
        let grantTypes = try strings("grant_types") ?? ["authorization_code", "refresh_token"]
        if grantTypes.contains(where: { $0 == "client_credentials" || $0 == GrantType.jwtBearer }) {
            throw ErrorResponse.invalidClientMetadata(
                "grant_types: machine clients (client_credentials) and clients of identity assertions (jwt-bearer) are"
                    + " registered by the gateway's operator (McpGateway admin add-client)")
        }
        guard !grantTypes.isEmpty, grantTypes.contains("authorization_code"),
            Set(grantTypes).isSubset(of: Self.grantTypes)
        else {
            throw ErrorResponse.invalidClientMetadata(
                "grant_types must include authorization_code and may add refresh_token")
        }
        return grantTypes
    }

    /// `response_types`, when present, must be `["code"]`; `scope`, when present, only supported scopes.
    func checkResponseTypesAndScope() throws {
        if let responseTypes = try strings("response_types"), responseTypes != ["code"] {
            throw ErrorResponse.invalidClientMetadata("response_types must be [\"code\"]")
        }
        if let scope = try string("scope") {
            let unsupported = ScopeSet(spaceSeparated: scope).subtracting(supportedScopes)
            guard unsupported.isEmpty else {
                throw ErrorResponse.invalidClientMetadata("Unsupported scope: \(unsupported)")
            }
        }
    }

    /// `client_name`: one line of at most 200 characters.
    func name() throws -> String? { try text("client_name", limit: 200) }

    /// `client_uri` and `logo_uri`: https (http only on loopback), at most 2000 characters.
    func webURL(_ name: String) throws -> String? {
        guard let text = try string(name) else { return nil }
        guard text.count <= 2000, let components = URLComponents(string: text), let host = components.host,
            !host.isEmpty,
            components.scheme == "https" || (components.scheme == "http" && RedirectURI.isLoopback(host: host))
        else { throw ErrorResponse.invalidClientMetadata("\(name) must be an https URL") }
        return text
    }

    func string(_ name: String) throws -> String? {
        guard let value = metadata[name], value != .null else { return nil }
        guard let text = value.stringValue else {
            throw ErrorResponse.invalidClientMetadata("\(name) must be a string")
        }
        return text
    }

    func strings(_ name: String) throws -> [String]? {
        guard let value = metadata[name], value != .null else { return nil }
        guard let list = value.stringArrayValue else {
            throw ErrorResponse.invalidClientMetadata("\(name) must be an array of strings")
        }
        return list
    }

    private func text(_ name: String, limit: Int) throws -> String? {
        guard let text = try string(name)?.trimmingCharacters(in: .whitespacesAndNewlines), !text.isEmpty
        else { return nil }
        guard text.count <= limit, !text.unicodeScalars.contains(where: { CharacterSet.controlCharacters.contains($0) })
        else {
            throw ErrorResponse.invalidClientMetadata("\(name) must be at most \(limit) characters on one line")
        }
        return text
    }
}
