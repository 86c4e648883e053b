import Foundation
import JWTAuth

/// Grants: what a user authorized one client to do, and the root everything else hangs from.
protocol GrantStore: Sendable {
    func grant(id: String) async throws -> Grant?
    /// Stores a grant with its first tokens, for grants without an authorization code (client credentials, identity
    /// assertions).
    func insert(grant: Grant, issuing tokens: IssuedTokens) async throws
    /// Binds a grant's refresh tokens to a DPoP key, unless they are bound already or `currentRefreshDigest` is no
    /// longer the grant's newest refresh token.
    func bindRefreshTokens(grantID: String, currentRefreshDigest: String, dpopJKT: String) async throws
    /// Revokes a grant and deletes the access tokens it issued; `false` when it was not active.
    @discardableResult func revokeGrant(id: String, now: Date) async throws -> Bool
    /// The grants that are neither revoked nor expired, newest first; all of them, or a user's, or a client's.
    func activeGrants(_ filter: GrantFilter, now: Date) async throws -> [Grant]
}

/// A grant without its upstream tokens.
struct GrantSummary: Sendable, Equatable {
    var id: String
    var clientID: String
    var user: UserProfile?
    var scope: ScopeSet
    var resource: String
    var expiresAt: Date
    var revokedAt: Date?
    /// The DPoP key the grant's refresh tokens are bound to (public clients that began it with a proof).
    var dpopJKT: String? = nil
    /// The refresh rotation's state (see ``RefreshRotationRule``), to tell a replay from a use before anything else.
    var currentRefreshDigest: String? = nil
    var previousRefreshDigest: String? = nil
    var previousRefreshValidUntil: Date? = nil

    init(
        id: String, clientID: String, user: UserProfile?, scope: ScopeSet, resource: String, expiresAt: Date,
        revokedAt: Date?, dpopJKT: String? = nil, currentRefreshDigest: String? = nil,
        previousRefreshDigest: String? = nil, previousRefreshValidUntil: Date? = nil
    ) {
        self.dpopJKT = dpopJKT
        self.currentRefreshDigest = currentRefreshDigest
        self.previousRefreshDigest = previousRefreshDigest
        self.previousRefreshValidUntil = previousRefreshValidUntil
        self.id = id
        self.clientID = clientID
        self.user = user
        self.scope = scope
        self.resource = resource
        self.expiresAt = expiresAt
        self.revokedAt = revokedAt
    }

    init(_ grant: Grant) {
        self.init(
            id: grant.id, clientID: grant.clientID, user: grant.user, scope: grant.scope, resource: grant.resource,
            expiresAt: grant.expiresAt, revokedAt: grant.revokedAt, dpopJKT: grant.dpopJKT,
            currentRefreshDigest: grant.currentRefreshDigest, previousRefreshDigest: grant.previousRefreshDigest,
            previousRefreshValidUntil: grant.previousRefreshValidUntil)
    }

    func isActive(at now: Date) -> Bool { revokedAt == nil && expiresAt > now }
}

enum GrantFilter: Sendable, Equatable {
    case all
    case user(subject: String)
    case client(id: String)
}
