/// The credential of a gateway grant for the tools: the user's upstream access token, kept with the grant and renewed
/// by ``UpstreamTokenService`` when it is about to expire.
struct GrantCredentials: TodosAPICredentialSource {
    let tokens: UpstreamTokenService
    let grant: Grant

    func credential() async throws(TodosAPIFailure) -> TodosAPIClient.Credential {
        do {
            return .bearer(try await tokens.accessToken(grantID: grant.id, known: grant))
        } catch {
            switch error {
            case .signInRequired: throw .signInRequired
            case .providerUnavailable: throw .providerUnavailable
            case .credentialsUnreadable: throw .credentialsUnreadable
            }
        }
    }
}
