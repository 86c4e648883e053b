import Foundation
import JWTAuth

/// JWTs that may be used once (client assertions, identity assertions), remembered by digest until they expire.
protocol UsedAssertionStore: Sendable {
    /// Records the assertion `digest` as used until `expiresAt`; `false` when it was used before and has not expired
    /// (a replay). Several instances recording one at once: one gets `true`.
    func markUsed(digest: String, expiresAt: Date, now: Date) async throws -> Bool
}
