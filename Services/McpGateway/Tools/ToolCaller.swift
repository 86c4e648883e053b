import JWTAuth
import ServiceSupport

/// Who calls a tool and what they may do: all a tool knows of the caller. The MCP layer builds it from whatever
/// authenticated the request (a gateway token, another issuer's JWT, a Cloudflare Access assertion).
struct ToolCaller: Sendable {
    /// The user's stable identifier (`sub`), and what the identity provider said of them.
    var subject: String
    var name: String?
    var email: String?
    /// The OAuth client acting for the user, when there is one.
    var clientID: String?
    /// A machine client (client credentials) acting for no user; `subject` is then its client id.
    var isMachine = false
    /// The groups and roles the identity's claims named (``ToolPolicy``).
    var groups: Set<String> = []
    var roles: Set<String> = []
    /// The enterprise issuer that asserted the identity (an identity assertion of another issuer than the sign-in
    /// provider); `nil` otherwise.
    var assertedBy: String? = nil
    /// The scopes this connection was granted.
    var scope: ScopeSet
    /// How calls to TodosAPI prove they are made for this user.
    var credentials: any TodosAPICredentialSource
    /// The W3C trace context the client sent, passed on to TodosAPI.
    var trace: TraceContext?
}

/// Produces the credential that TodosAPI accepts for the caller, renewing it first when it must. Never the credential
/// the MCP client presented to the gateway (see ``DownstreamTokenKind``).
protocol TodosAPICredentialSource: Sendable {
    /// A credential for a request that needs `scope`, TodosAPI's scope for the endpoint called.
    func credential(scope: String) async throws(TodosAPIFailure) -> TodosAPICredential
}
