import JWTAuth

/// Who is calling `/mcp`, in any authentication mode.
struct CallerIdentity: Sendable, Equatable {
    var subject: String
    var name: String?
    var email: String?
    /// The OAuth client acting for the user, when there is one.
    var clientID: String?
}

/// How the tools reach TodosAPI for the caller. Never the credential the MCP client presented to the gateway, except
/// in external mode, where the client's token is itself a token for TodosAPI's issuer (see docs/auth-modes.md).
enum UpstreamCredential: Sendable {
    /// The user's upstream tokens kept with the grant, refreshed as needed (gateway mode).
    case grant(Grant)
    /// The caller's own access token, forwarded (external mode).
    case bearer(String)
    /// The Cloudflare Access assertion, forwarded as `Cf-Access-Token` (access mode).
    case accessAssertion(String)
}

/// The authenticated caller of `/mcp`: identity, the scopes the tools may use, and how to reach TodosAPI.
struct MCPCaller: Sendable {
    let identity: CallerIdentity
    let scope: ScopeSet
    let credential: UpstreamCredential

    /// Sessions are bound to the user, not the token: a refreshed token keeps using the session.
    var owner: String { identity.subject }
}
