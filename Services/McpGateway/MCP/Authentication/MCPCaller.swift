import JWTAuth
import ServiceSupport

/// Who is calling the MCP endpoints, in any authentication mode.
struct CallerIdentity: Sendable, Equatable {
    var subject: String
    var name: String?
    var email: String?
    /// The OAuth client acting for the user, when there is one.
    var clientID: String?
    /// A machine client (client credentials) acting for no user: `subject` is its client id.
    var isMachine = false
    /// The groups and roles the identity's claims named, for the tool policy.
    var groups: [String] = []
    var roles: [String] = []
    /// The enterprise issuer that asserted this identity, when it is not the sign-in provider.
    var assertedBy: String? = nil

    /// The identity of a machine client, which acts for no user.
    static func machine(clientID: String) -> CallerIdentity {
        CallerIdentity(subject: clientID, clientID: clientID, isMachine: true)
    }

    /// Whom the tokens the gateway mints for this caller speak for.
    var principal: DownstreamPrincipal {
        DownstreamPrincipal(subject: subject, clientID: clientID, name: name, email: email)
    }
}

/// The authenticated caller of `/mcp`, `/sse` and `/messages`: identity, the scopes the tools may use, and how the
/// tools reach TodosAPI for them. Never the credential the MCP client presented to the gateway (no token passthrough).
struct MCPCaller: Sendable {
    let identity: CallerIdentity
    let scope: ScopeSet
    let credentials: any DownstreamCredentialSource
    /// The `traceparent` (and `tracestate`) headers of the HTTP request, if well formed.
    var trace: TraceContext? = nil

    /// Sessions and limits belong to the user (or the machine client), not to a token: a refreshed token keeps using
    /// the session. A client's id never passes for a user's subject.
    var owner: String { identity.isMachine ? "client:" + identity.subject : identity.subject }

    /// What the tools get to know of the caller; `trace` is the one in the MCP request's `_meta`, which wins over the
    /// HTTP headers'.
    func toolCaller(trace: TraceContext?) -> ToolCaller {
        ToolCaller(
            subject: identity.subject, name: identity.name, email: identity.email, clientID: identity.clientID,
            isMachine: identity.isMachine, groups: Set(identity.groups), roles: Set(identity.roles),
            assertedBy: identity.assertedBy, scope: scope,
            credentials: credentials, trace: trace ?? self.trace)
    }
}
