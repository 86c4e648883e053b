import Foundation
import JSON
import JWTAuth
import ServiceSupport

/// Why a Client ID Metadata Document was not accepted: a sentence for the developer of the client, shown on the
/// error page of `/authorize` and in `invalid_client` errors.
struct ClientMetadataDocumentError: Error, CustomStringConvertible, Equatable {
    enum Kind: Equatable {
        /// The `client_id` is not a URL a metadata document may live at.
        case invalidURL
        /// The document could not be fetched (address refused, unreachable, timeout, HTTP status, size).
        case unavailable
        /// The document was fetched but is not acceptable.
        case invalidDocument
    }

    var kind: Kind
    var description: String

    static func invalidURL(_ reason: String) -> Self { .init(kind: .invalidURL, description: reason) }
    static func unavailable(_ reason: String) -> Self { .init(kind: .unavailable, description: reason) }
    static func invalidDocument(_ reason: String) -> Self { .init(kind: .invalidDocument, description: reason) }
}

/// The URL of a Client ID Metadata Document, checked as the draft (draft-ietf-oauth-client-id-metadata-document)
/// requires: https, a path, no fragment, no user name or password, no `.` or `..` segments.
struct ClientMetadataDocumentURL: Sendable, Equatable {
    /// The URL exactly as the client sent it: it is the client's id, and the document must name it byte for byte.
    let text: String
    /// Lower-cased, without brackets for IPv6 literals.
    let host: String
    let port: Int
    /// The URL the gateway fetches: ``text`` with the host in lower case, so that the HTTP client connects to the host
    /// name the address check resolved, not to a spelling of it that it would resolve again.
    let fetchURL: String

    static let maximumLength = 2048

    /// Whether `clientID` is meant as a metadata document URL rather than an id this gateway issued: ids from
    /// `/register` never contain `://`.
    static func isCandidate(_ clientID: String) -> Bool {
        clientID.hasPrefix("https://") || clientID.hasPrefix("http://")
    }

    /// - Parameter allowLoopbackHTTP: development only: `http://` is accepted for loopback hosts.
    init(_ text: String, allowLoopbackHTTP: Bool) throws(ClientMetadataDocumentError) {
        guard text.utf8.count <= Self.maximumLength else {
            throw .invalidURL("The client_id URL is longer than \(Self.maximumLength) bytes.")
        }
        guard text.unicodeScalars.allSatisfy({ $0.isASCII && $0.value > 0x20 && $0.value != 0x7F }),
            let components = URLComponents(string: text), let scheme = components.scheme?.lowercased(),
            var host = components.host?.lowercased(), !host.isEmpty
        else { throw .invalidURL("The client_id is not a valid absolute URL.") }
        guard components.percentEncodedHost?.contains("%") != true else {
            throw .invalidURL("The client_id URL's host must not be percent-encoded.")
        }
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        switch scheme {
        case "https": break
        case "http" where allowLoopbackHTTP && RedirectURI.isLoopback(host: host): break
        default: throw .invalidURL("A client_id URL must use https.")
        }
        guard components.user == nil, components.password == nil else {
            throw .invalidURL("A client_id URL must not contain a user name or password.")
        }
        guard components.fragment == nil else { throw .invalidURL("A client_id URL must not contain a fragment.") }
        let path = components.percentEncodedPath
        guard path.count > 1 else {
            throw .invalidURL("A client_id URL must have a path, e.g. https://app.example/oauth/client.json.")
        }
        let segments = path.split(separator: "/", omittingEmptySubsequences: false).map {
            ($0.removingPercentEncoding ?? String($0))
        }
        guard !segments.contains(where: { $0 == "." || $0 == ".." }) else {
            throw .invalidURL("A client_id URL must not contain . or .. path segments.")
        }
        let port = components.port ?? (scheme == "https" ? 443 : 80)
        guard (1...65535).contains(port) else {
            throw .invalidURL("The client_id URL has an invalid port.")
        }
        // Only the https port: any other turns the gateway into a port scanner of hosts that trust it. (Development
        // setups, with CLIENT_ID_METADATA_ALLOW_PRIVATE, may use any.)
        guard port == 443 || allowLoopbackHTTP else {
            throw .invalidURL("A client_id URL must use the https port (443).")
        }
        var fetchComponents = components
        fetchComponents.percentEncodedHost = components.percentEncodedHost?.lowercased()
        guard let fetchURL = fetchComponents.string else {
            throw .invalidURL("The client_id is not a valid absolute URL.")
        }
        self.fetchURL = fetchURL
        self.text = text
        self.host = host
        self.port = port
    }
}

/// A fetched metadata document turned into the client it describes. Such clients are public: they have no secret
/// (anyone can read the document), so they authenticate at `/token` with PKCE alone.
enum ClientMetadataDocument {
    static func client(
        from body: some Collection<UInt8>, url: ClientMetadataDocumentURL, supportedScopes: ScopeSet, fetchedAt: Date
    ) throws(ClientMetadataDocumentError) -> RegisteredClient {
        guard case .object(let metadata)? = try? JSONValue(parsing: body) else {
            throw .invalidDocument("The metadata document is not a JSON object.")
        }
        guard metadata["client_id"]?.stringValue == url.text else {
            throw .invalidDocument("The document's client_id must be exactly its own URL, \(url.text).")
        }
        for secret in ["client_secret", "client_secret_expires_at"] where metadata[secret] != nil {
            throw .invalidDocument("A metadata document is public and must not contain \(secret).")
        }
        let rules = ClientMetadataRules(metadata: metadata, supportedScopes: supportedScopes)
        do {
            let method = try rules.string("token_endpoint_auth_method") ?? "none"
            guard method == "none" else {
                throw ErrorResponse.invalidClientMetadata(
                    "token_endpoint_auth_method must be none (or absent): this server supports only public clients"
                        + " for metadata documents")
            }
            let redirectURIs = try rules.redirectURIs()
            guard let name = try rules.name() else {
                throw ErrorResponse.invalidClientMetadata("client_name is required")
            }
            let grantTypes = try rules.grantTypes()
            try rules.checkResponseTypesAndScope()
            return RegisteredClient(
                id: url.text, secretDigest: nil, authMethod: .none, name: name, uri: try rules.webURL("client_uri"),
                logoURI: try rules.webURL("logo_uri"), redirectURIs: redirectURIs, grantTypes: grantTypes,
                createdAt: fetchedAt)
        } catch let error as ErrorResponse {
            throw .invalidDocument("The metadata document is invalid: \(error.message).")
        } catch {
            throw .invalidDocument("The metadata document is invalid.")
        }
    }
}
