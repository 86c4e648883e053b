import JWTAuth

/// How a caller of `AUTH_MODE=gateway` gets its credential for TodosAPI, by `DOWNSTREAM_TOKENS`. The other modes mint
/// always (their authenticators take a ``DownstreamTokenMinter``).
///
/// A grant no provider signed in (an identity assertion's) holds no provider token to present or exchange: its calls
/// get minted tokens whatever the setting.
struct GrantDownstreamCredentials: Sendable {
    let kind: DownstreamTokenKind
    let minter: DownstreamTokenMinter
    /// Present when `kind` is `exchange`.
    let exchanges: TokenExchanges?

    func credentials(for grant: Grant, scope: ScopeSet, tokens: UpstreamTokenService) -> any DownstreamCredentialSource {
        guard let user = grant.user else { return NoUserCredential() }
        let signedIn = grant.upstream != nil
        if signedIn, kind == .upstream { return GrantCredentials(tokens: tokens, grant: grant) }
        if signedIn, kind == .exchange, let exchanges {
            return ExchangedCredential(exchanges: exchanges, tokens: tokens, grant: grant, granted: scope)
        }
        return MintedCredential(
            minter: minter,
            principal: DownstreamPrincipal(
                subject: user.subject, clientID: grant.clientID, name: user.name, email: user.email),
            granted: scope, grant: signedIn ? (tokens, grant) : nil)
    }
}

/// A machine client's grant: there is no user to speak for.
struct NoUserCredential: DownstreamCredentialSource {
    func credential(scope: ScopeSet, audience: String?) async throws(APIFailure) -> DownstreamCredential {
        throw .noUser
    }
}
