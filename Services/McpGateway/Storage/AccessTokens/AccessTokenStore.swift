import Foundation
import JWTAuth

/// The gateway's access tokens, by digest.
protocol AccessTokenStore: Sendable {
    /// An unexpired access token whose grant is active, with that grant.
    func accessToken(digest: String, now: Date) async throws -> AuthenticatedAccessToken?
    /// Deletes an access token of `clientID`; `false` when it does not exist or belongs to another client.
    func deleteAccessToken(digest: String, clientID: String) async throws -> Bool
}

struct AuthenticatedAccessToken: Sendable {
    var token: AccessTokenRecord
    var grant: Grant
}
