/// The credential of a gateway grant for the tools (`DOWNSTREAM_TOKENS=upstream`): the user's upstream access token,
/// kept with the grant and renewed by ``UpstreamTokenService`` when it is about to expire.
struct GrantCredentials: TodosAPICredentialSource {
    let tokens: UpstreamTokenService
    let grant: Grant

    func credential(scope: String) async throws(TodosAPIFailure) -> TodosAPICredential {
        .bearer(try await Self.upstreamAccessToken(tokens, grant: grant))
    }

    /// The grant's upstream access token, renewed if it must be; a provider that ended the sign-in ends the grant.
    static func upstreamAccessToken(_ tokens: UpstreamTokenService, grant: Grant) async throws(TodosAPIFailure)
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
