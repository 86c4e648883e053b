import JWTAuth

/// How a caller of `AUTH_MODE=gateway` gets its credential for TodosAPI, by `DOWNSTREAM_TOKENS`. The other modes mint
/// always (their authenticators take a ``DownstreamTokenMinter``).
enum GrantDownstreamCredentials: Sendable {
    /// The provider's access token of the grant.
    case upstream
    /// Tokens the gateway signs, while the grant's sign-in with the provider holds.
    case mint(DownstreamTokenMinter)
    /// Tokens the provider exchanges the grant's upstream token for.
    case exchange(TokenExchanges)

    func credentials(for grant: Grant, scope: ScopeSet, tokens: UpstreamTokenService) -> any TodosAPICredentialSource {
        switch self {
        case .upstream:
            return GrantCredentials(tokens: tokens, grant: grant)
        case .mint(let minter):
            return MintedCredential(
                minter: minter,
                principal: DownstreamPrincipal(
                    subject: grant.user.subject, clientID: grant.clientID, name: grant.user.name,
                    email: grant.user.email),
                granted: scope, grant: (tokens, grant))
        case .exchange(let exchanges):
            return ExchangedCredential(exchanges: exchanges, tokens: tokens, grant: grant, granted: scope)
        }
    }
}
