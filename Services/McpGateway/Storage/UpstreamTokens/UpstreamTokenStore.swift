import Foundation
import JWTAuth

/// The provider's tokens a grant holds, sealed.
protocol UpstreamTokenStore: Sendable {
    /// Replaces a grant's upstream tokens after a refresh with the provider.
    func updateUpstream(grantID: String, tokens: UpstreamTokens) async throws
    /// Replaces a grant's upstream tokens only if they are still `expected` (a compare-and-swap: the first of several
    /// instances to start a refresh wins, and a re-seal does not undo a refresh that ran meanwhile); `false` when they
    /// changed.
    func replaceUpstream(grantID: String, expected: UpstreamTokens, with tokens: UpstreamTokens) async throws -> Bool
    /// The ids of the keys the upstream tokens of active grants are sealed under.
    func sealingKeyIDs(now: Date) async throws -> Set<String>
}
