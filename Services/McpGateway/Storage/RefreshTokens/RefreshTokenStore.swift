import Foundation
import JWTAuth

/// Refresh tokens and their rotation.
protocol RefreshTokenStore: Sendable {
    /// The grant a refresh token belongs to, whether the token is current, previous or older: what a token or
    /// revocation request needs to know of it (not its upstream tokens).
    func grant(refreshDigest: String) async throws -> GrantSummary?
    /// Rotates a refresh token by the rule in ``RefreshRotation``; when the newest token is presented, the one it
    /// replaces stays a grace token until `graceUntil`.
    func rotate(refreshDigest: String, grantID: String, issuing tokens: IssuedTokens, now: Date, graceUntil: Date)
        async throws -> RefreshRotation
}

/// The outcome of presenting a refresh token.
///
/// Each use returns a new refresh token. The one presented stays usable as a grace token, so that a client that lost
/// the response can retry, but only while the new one is unused and for `REFRESH_TOKEN_REUSE_INTERVAL` (60 s by
/// default) after the rotation (RFC 9700 §4.14.2). A retry within the grace replaces the new token and does not
/// extend the grace. Presenting anything else (an older token, or the grace token after the grace) is taken for a
/// stolen token being replayed: the whole grant is revoked.
enum RefreshRotation: Equatable, Sendable {
    case rotated
    /// An older token was presented: the grant is revoked.
    case reused
    /// The grant is revoked or expired.
    case inactive
}

/// The rule of ``RefreshRotation`` as a decision on the grant's row, shared by the backends, which apply it inside the
/// transaction that holds the row.
enum RefreshRotationRule: Equatable {
    /// The newest token: it becomes the previous one, a grace token until the grace's end.
    case rotateCurrent
    /// The previous token within its grace, its successor unused: the successor is replaced, the grace's end kept.
    case replaceSuccessor
    /// Anything else: a replay.
    case revoke

    static func decide(presented digest: String, grant: Grant, now: Date) -> RefreshRotationRule {
        decide(
            presented: digest, current: grant.currentRefreshDigest, previous: grant.previousRefreshDigest,
            previousValidUntil: grant.previousRefreshValidUntil, now: now)
    }

    static func decide(presented digest: String, grant: GrantSummary, now: Date) -> RefreshRotationRule {
        decide(
            presented: digest, current: grant.currentRefreshDigest, previous: grant.previousRefreshDigest,
            previousValidUntil: grant.previousRefreshValidUntil, now: now)
    }

    static func decide(
        presented digest: String, current: String?, previous: String?, previousValidUntil: Date?, now: Date
    ) -> RefreshRotationRule {
        if current == digest { return .rotateCurrent }
        if previous == digest, let until = previousValidUntil, now <= until { return .replaceSuccessor }
        return .revoke
    }
}
