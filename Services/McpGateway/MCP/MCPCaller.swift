import JWTAuth

/// The authenticated caller of `/mcp`: the grant behind their access token, and that token's scopes.
struct MCPCaller: Sendable {
    let grant: Grant
    let scope: ScopeSet

    /// Sessions are bound to the user, not the token: a refreshed token keeps using the session.
    var owner: String { grant.user.subject }
}
