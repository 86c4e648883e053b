import Foundation
import ServiceSupport

/// An application registered with DevIdP, like an Auth0 "Application".
struct Client: Sendable {
    enum Kind: String, Sendable {
        /// A Regular Web Application with a secret (the MCP gateway).
        case confidential
        /// A Machine-to-Machine application: client credentials, plus the password grant for `make token`.
        case machine
        /// A public client (dynamic registration with `token_endpoint_auth_method: none`): PKCE required.
        case `public`
    }

    let id: String
    let kind: Kind
    /// SHA-256 hex of the secret; `nil` for public clients.
    let secretDigest: String?
    let name: String
    let redirectURIs: [String]
    let grantTypes: Set<String>
    let createdAt: Date

    var isPublic: Bool { kind == .public }

    func allowsRedirect(to uri: String) -> Bool {
        redirectURIs.contains { RedirectURI.matches(uri, registered: $0) }
    }
}
