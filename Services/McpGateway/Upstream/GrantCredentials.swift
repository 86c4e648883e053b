import JWTAuth
/// The credential of a gateway grant for the tools (`DOWNSTREAM_TOKENS=upstream`): the user's upstream access token,
/// kept with the grant and renewed by ``UpstreamTokenService`` when it is about to expire. It is for the one audience
/// the provider issued it for: the configuration refuses APIs of other audiences with this setting
/// (``APICatalogSettings``), and the API itself checks the scope.
struct GrantCredentials: DownstreamCredentialSource {
    let tokens: UpstreamTokenService
    let grant: Grant

    func credential(scope: ScopeSet, audience: String?) async throws(APIFailure) -> DownstreamCredential {
        .bearer(try await Self.upstreamAccessToken(tokens, grant: grant))
    }

    /// The grant's upstream access token, renewed if it must be; a provider that ended the sign-in ends the grant.
    static func upstreamAccessToken(_ tokens: UpstreamTokenService, grant: Grant) async throws(APIFailure)
        -> String
    {
        do {
            return try await tokens.accessToken(grantID: grant.id, known: grant)
        } catch {
            switch error {
            case .signInRequired: throw .signInRequired
            case .providerUnavailable: throw .providerUnavailable
            case .credentialsUnreadable: throw .credentialsUnreadable
            case .storageUnavailable: throw .storageUnavailable
            }
        }
    }
}
