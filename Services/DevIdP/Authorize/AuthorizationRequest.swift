import Foundation
import JWTAuth
import ServiceSupport

/// A validated `/authorize` request, kept server-side while the user signs in.
struct AuthorizationRequest: Sendable {
    let clientID: String
    let redirectURI: String
    /// Whether the client sent `redirect_uri` (then the token request must repeat it, RFC 6749 §4.1.3).
    let redirectURIWasSent: Bool
    let scope: ScopeSet
    let audience: String
    let state: String?
    let nonce: String?
    let codeChallenge: String?
    let loginHint: String?
}

/// An error of `/authorize`: before the redirect URI is known good it is shown as a page; after, it is sent back to
/// the client's redirect URI (RFC 6749 §4.1.2.1).
enum AuthorizeError: Error {
    case page(status: Int, title: String, message: String)
    case redirect(uri: String, error: String, description: String, state: String?)
}

extension AuthorizationRequest {
    /// Validates the query of `GET /authorize` against the client registry and the tenant's APIs.
    static func validate(_ query: FormParameters, clients: ClientRegistry, configuration: DevIdPConfiguration)
        throws(AuthorizeError) -> AuthorizationRequest
    {
        func single(_ name: String) throws(AuthorizeError) -> String? {
            do { return try query.single(name) } catch {
                throw .page(status: 400, title: "Invalid request", message: error.message)
            }
        }
        guard let clientID = try single("client_id") else {
            throw .page(status: 400, title: "Invalid request", message: "The request has no client_id.")
        }
        guard let client = clients.client(id: clientID) else {
            throw .page(
                status: 400, title: "Unknown application", message: "No application has the client_id '\(clientID)'.")
        }
        let sentRedirect = try single("redirect_uri")
        guard let redirectURI = sentRedirect ?? (client.redirectURIs.count == 1 ? client.redirectURIs[0] : nil) else {
            throw .page(status: 400, title: "Invalid request", message: "The request has no redirect_uri.")
        }
        guard client.allowsRedirect(to: redirectURI), client.grantTypes.contains("authorization_code") else {
            throw .page(
                status: 400, title: "Callback URL mismatch",
                message: "\(redirectURI) is not in the list of allowed callback URLs of \(client.name).")
        }

        // From here on, errors go back to the application.
        let state = try single("state")
        func fail(_ error: String, _ description: String) -> AuthorizeError {
            .redirect(uri: redirectURI, error: error, description: description, state: state)
        }
        guard let responseType = try single("response_type") else {
            throw fail("invalid_request", "The request has no response_type: send response_type=code")
        }
        guard responseType == "code" else {
            throw fail("unsupported_response_type", "Only response_type=code is supported")
        }
        if let mode = try single("response_mode"), mode != "query" {
            throw fail("invalid_request", "Only response_mode=query is supported")
        }
        let challenge = try single("code_challenge")
        let method = try single("code_challenge_method")
        if let challenge {
            guard method == "S256" else { throw fail("invalid_request", "code_challenge_method must be S256") }
            guard PKCE.isWellFormedS256Challenge(challenge) else {
                throw fail("invalid_request", "code_challenge is not a base64url SHA-256 digest")
            }
        } else if client.isPublic {
            throw fail("invalid_request", "Public clients must use PKCE: send code_challenge with method S256")
        } else if method != nil {
            throw fail("invalid_request", "code_challenge_method was sent without code_challenge")
        }
        let audience = try single("audience") ?? configuration.audiences[0]
        guard configuration.audiences.contains(audience) else {
            throw fail("access_denied", "Service not found: \(audience)")
        }
        if try single("prompt")?.split(separator: " ").contains("none") == true {
            throw fail("login_required", "DevIdP keeps no session: the user must sign in")
        }
        return AuthorizationRequest(
            clientID: clientID, redirectURI: redirectURI, redirectURIWasSent: sentRedirect != nil,
            scope: ScopeSet(spaceSeparated: try single("scope") ?? "openid profile email"), audience: audience,
            state: state, nonce: try single("nonce"), codeChallenge: challenge, loginHint: try single("login_hint"))
    }
}
