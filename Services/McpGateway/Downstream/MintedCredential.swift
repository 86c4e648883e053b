import JWTAuth
import Logging

/// `DOWNSTREAM_TOKENS=mint`: for each call, a token the gateway signs for the caller (``DownstreamTokenMinter``),
/// carrying the one scope the endpoint needs, and only if the caller was granted it.
struct MintedCredential: DownstreamCredentialSource {
    let minter: DownstreamTokenMinter
    let principal: DownstreamPrincipal
    /// What the caller was granted: the gateway token's scope, the external token's, or `ACCESS_SCOPES`.
    let granted: ScopeSet
    /// In `AUTH_MODE=gateway`, the grant whose sign-in with the provider must still hold before the gateway speaks for
    /// the user: its upstream tokens are renewed as they expire, and a provider that refuses ends the grant.
    var grant: (tokens: UpstreamTokenService, grant: Grant)? = nil
    var logger = Logger(label: "McpGateway.downstream")

    func credential(scope: ScopeSet, audience: String?) async throws(APIFailure) -> DownstreamCredential {
        if let missing = scope.subtracting(granted).sorted.first {
            throw .forbidden("this connection was not granted the \(missing) scope")
        }
        if let grant { _ = try await GrantCredentials.upstreamAccessToken(grant.tokens, grant: grant.grant) }
        do {
            return .bearer(try minter.token(for: principal, scope: scope, audience: audience))
        } catch {
            logger.error("A downstream token could not be signed", metadata: ["error": "\(error)"])
            throw .gatewayUnavailable
        }
    }
}
