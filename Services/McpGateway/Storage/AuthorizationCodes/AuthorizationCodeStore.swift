import Foundation
import JWTAuth

/// Authorization codes, each the start of a grant.
protocol AuthorizationCodeStore: Sendable {
    /// Stores a new grant and the authorization code that will start it.
    func insert(grant: Grant, code: AuthorizationCodeRecord) async throws
    func code(digest: String) async throws -> AuthorizationCodeRecord?
    /// Marks the code redeemed and stores the tokens, if it was not redeemed before and its grant is active. A code
    /// presented again revokes its grant and everything issued from it.
    func redeem(codeDigest: String, issuing tokens: IssuedTokens, now: Date) async throws -> CodeRedemption
}

enum CodeRedemption: Equatable, Sendable {
    case redeemed
    /// The code had been redeemed before: its grant is now revoked.
    case replayed
    case unknown
}
