import Foundation
import HTTPTypes
import JWTAuth
import ServiceSupport

/// An `/authorize` request that cannot proceed. Until the client and its redirect URI are known good, the user sees a
/// page and nothing is redirected; after, the error goes back to the client (RFC 6749 §4.1.2.1).
enum AuthorizeFailure: Error {
    case page(title: String, message: String, status: HTTPResponse.Status = .badRequest)
    case redirect(ClientAuthorizationRequest, error: String, description: String)
    /// A client_id URL whose metadata document could not be fetched or used. The user is told only that, with the
    /// request id: telling a refused connection from a timeout, a TLS failure or a status would let anyone probe the
    /// hosts that trust the gateway. The reason goes to the log.
    case metadataDocument(clientID: String, ClientMetadataDocumentError)
}

/// Validates the query of `GET /authorize`.
struct AuthorizationRequestValidator {
    let address: GatewayAddress
    let clients: ClientDirectory
    let scopes: GatewayScopes

    func validate(_ query: FormParameters) async throws -> (RegisteredClient, ClientAuthorizationRequest) {
        func single(_ name: String) throws(AuthorizeFailure) -> String? {
            do { return try query.single(name) } catch {
                throw .page(title: "Invalid request", message: error.message)
            }
        }
        guard let clientID = try single("client_id") else {
            throw AuthorizeFailure.page(title: "Invalid request", message: "The request has no client_id.")
        }
        guard let client = try await client(clientID) else {
            throw AuthorizeFailure.page(
                title: "Unknown application",
                message: ClientMetadataDocumentURL.isCandidate(clientID)
                    ? "This server does not accept client_id URLs (Client ID Metadata Documents). The application"
                        + " must register at /register instead."
                    : "No application is registered with this client_id. It may have been removed; reconnect it.")
        }
        let sentRedirect = try single("redirect_uri")
        guard let redirectURI = sentRedirect ?? (client.redirectURIs.count == 1 ? client.redirectURIs[0] : nil) else {
            throw AuthorizeFailure.page(title: "Invalid request", message: "The request has no redirect_uri.")
        }
        guard client.redirectURIs.contains(where: { RedirectURI.matches(redirectURI, registered: $0) }) else {
            throw AuthorizeFailure.page(
                title: "Unregistered redirect URI",
                message: "The application asked to return to an address it did not register. Nothing was sent there.")
        }

        // The redirect URI is trusted from here on: errors go back to the client (RFC 6749 §4.1.2.1).
        let state = try single("state")
        var request = ClientAuthorizationRequest(
            clientID: clientID, redirectURI: redirectURI, redirectURIIncluded: sentRedirect != nil, scope: [],
            state: state, codeChallenge: "", resource: nil)
        func fail(_ error: String, _ description: String) -> AuthorizeFailure {
            .redirect(request, error: error, description: description)
        }
        func parameter(_ name: String) throws(AuthorizeFailure) -> String? {
            do { return try query.single(name) } catch { throw fail("invalid_request", error.message) }
        }
        if let state, state.utf8.count > Self.maximumStateLength {
            throw fail("invalid_request", "state is longer than \(Self.maximumStateLength) bytes")
        }
        guard let responseType = try parameter("response_type") else {
            throw fail("invalid_request", "The request has no response_type: send response_type=code")
        }
        guard responseType == "code" else {
            throw fail("unsupported_response_type", "Only response_type=code is supported")
        }
        if let mode = try parameter("response_mode"), mode != "query" {
            throw fail("invalid_request", "Only response_mode=query is supported")
        }
        guard let challenge = try parameter("code_challenge") else {
            throw fail("invalid_request", "PKCE is required: send code_challenge with code_challenge_method=S256")
        }
        guard try parameter("code_challenge_method") == "S256" else {
            throw fail("invalid_request", "code_challenge_method must be S256")
        }
        guard PKCE.isWellFormedS256Challenge(challenge) else {
            throw fail("invalid_request", "code_challenge must be the base64url SHA-256 of the code verifier")
        }
        if let text = try parameter("scope"), text.utf8.count > 1024 {
            throw fail("invalid_scope", "scope is too long")
        }
        let scope = try parameter("scope").map(ScopeSet.init(spaceSeparated:)) ?? scopes.default
        let unsupported = scope.subtracting(scopes.supported)
        guard unsupported.isEmpty else { throw fail("invalid_scope", "Unsupported scope: \(unsupported)") }
        // RFC 8707 §2: `resource` may be repeated; every value must be a resource of this server.
        let resources = query.pairs.filter { $0.name == "resource" && !$0.value.isEmpty }.map(\.value)
        if let foreign = resources.first(where: { !address.isOwnResource($0) }) {
            throw fail(
                "invalid_target",
                "This server only issues tokens for the resource \(address.resource), not \(foreign.prefix(200))")
        }
        let resource = resources.first
        // RFC 9449 §10: the code is bound to the DPoP key whose thumbprint the client names here.
        if let thumbprint = try parameter("dpop_jkt") {
            guard thumbprint.utf8.count == 43, Base64URL.decode(thumbprint)?.count == 32 else {
                throw fail("invalid_request", "dpop_jkt must be the base64url SHA-256 thumbprint of the DPoP key")
            }
            request.dpopJKT = thumbprint
        }
        request.scope = scope.isEmpty ? scopes.default : scope
        request.codeChallenge = challenge
        request.resource = resource
        return (client, request)
    }

    /// The client, from the database or its metadata document; a document that cannot be used is the reason shown.
    private func client(_ clientID: String) async throws -> RegisteredClient? {
        do { return try await clients.clientForAuthorization(clientID) } catch let error as ClientMetadataDocumentError
        {
            throw AuthorizeFailure.metadataDocument(clientID: clientID, error)
        }
    }

    /// Pending sign-ins are stored before the user signs in, so what an anonymous request can make the gateway store
    /// is bounded: clients that encode data in `state` stay well under this.
    static let maximumStateLength = 4096
}
