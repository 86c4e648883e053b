import Foundation
import JWTAuth

/// Sign-ins waiting for the upstream provider's callback.
protocol PendingSignInStore: Sendable {
    func insert(pending: PendingAuthorization) async throws
    /// Removes and returns an unexpired pending sign-in: each can be used once.
    func takePending(keyDigest: String, now: Date) async throws -> PendingAuthorization?
}
