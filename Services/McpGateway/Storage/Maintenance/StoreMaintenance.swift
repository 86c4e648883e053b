import Foundation
import JWTAuth

/// Removal of what has expired, and counts for operators.
protocol StoreMaintenance: Sendable {
    /// Deletes what has expired, and clients registered before `unusedClientsBefore` that never obtained a grant.
    func sweep(now: Date, unusedClientsBefore: Date) async throws -> SweepReport
    func counts(now: Date) async throws -> StoreCounts
    /// Throws unless the database answers (`/ready`).
    func ping() async throws
}

struct SweepReport: Sendable, Equatable, Encodable {
    var pendingSignIns = 0
    var accessTokens = 0
    var codes = 0
    var grants = 0
    var clients = 0
    /// Used client and identity assertions past their expiry.
    var assertions = 0

    var total: Int { pendingSignIns + accessTokens + codes + grants + clients + assertions }
}

struct StoreCounts: Sendable, Equatable, Codable {
    var clients: Int
    var activeGrants: Int
    var users: Int
    var accessTokens: Int
    var pendingSignIns: Int
}

/// How long rows are kept after they stop working, so that a replay is recognised as one.
enum Retention {
    /// Redeemed and expired codes: a day, for replay detection.
    static let codes: TimeInterval = 86_400
    /// Revoked grants: a week, so that a reused refresh token is recognised and logged as such.
    static let revokedGrants: TimeInterval = 7 * 86_400
}
