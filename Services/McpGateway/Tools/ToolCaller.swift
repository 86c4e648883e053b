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
    /// How calls to the APIs prove they are made for this user.
    var credentials: any DownstreamCredentialSource
    /// The W3C trace context the client sent, passed on to TodosAPI.
    var trace: TraceContext?
}

/// Produces the credential an API accepts for the caller, renewing it first when it must. Never the credential the MCP
/// client presented to the gateway (see ``DownstreamTokenKind``).
protocol DownstreamCredentialSource: Sendable {
    /// A credential for a request that needs `scope` (the scopes of the operation called, each granted to the caller)
    /// at the API whose tokens are for `audience`; `nil`: the default audience (`DOWNSTREAM_AUDIENCE`).
    func credential(scope: ScopeSet, audience: String?) async throws(APIFailure) -> DownstreamCredential
}

/// How a request proves who it is for. Never a token the MCP client presented: the APIs do not accept those.
enum DownstreamCredential: Sendable, Equatable {
    /// `Authorization: Bearer`: an access token of an issuer the API trusts (the provider, or the gateway).
    case bearer(String)
}
