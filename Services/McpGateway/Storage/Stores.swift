import Foundation
import JWTAuth

// The gateway's storage, one small protocol per aggregate. SQLite implements them for one instance
// (`Storage/SQLite/`), PostgreSQL for several instances sharing one database (`Storage/Postgres/`); both pass the same
// conformance suite (`Tests/McpGatewayTests/StoreConformanceTests.swift`).
//
// Every operation that must be atomic (taking a pending sign-in, redeeming a code, rotating a refresh token, replacing
// upstream tokens that have not changed meanwhile) is one method, which an implementation runs as one transaction with
// conditional statements: it holds for concurrent requests and for concurrent instances.
//
// Writes that end or change what an access token stands for are announced on a ``GrantChangeFeed`` once they have
// committed, so that caches (``AccessTokenCache``) drop what they hold, on this instance and, through PostgreSQL's
// `NOTIFY`, on every other.

/// Clients registered through `/register`, or described by a client metadata document.
protocol ClientStore: Sendable {
    func insert(client: RegisteredClient) async throws
    /// Inserts a client or updates it in place, keeping its grants and its first `createdAt`: a client described by a
    /// metadata document is saved again each time its document is fetched. An unchanged client writes nothing.
    func save(client: RegisteredClient) async throws
    func client(id: String) async throws -> RegisteredClient?
    /// Every client, newest first, with how many active grants each has.
    func clients(now: Date) async throws -> [ClientSummary]
    /// Deletes a client with everything issued to it; `false` when there was no such client.
    func deleteClient(id: String) async throws -> Bool
}

/// Sign-ins waiting for the upstream provider's callback.
protocol PendingSignInStore: Sendable {
    func insert(pending: PendingAuthorization) async throws
    /// Removes and returns an unexpired pending sign-in: each can be used once.
    func takePending(keyDigest: String, now: Date) async throws -> PendingAuthorization?
}

/// Authorization codes, each the start of a grant.
protocol AuthorizationCodeStore: Sendable {
    /// Stores a new grant and the authorization code that will start it.
    func insert(grant: Grant, code: AuthorizationCodeRecord) async throws
    func code(digest: String) async throws -> AuthorizationCodeRecord?
    /// Marks the code redeemed and stores the tokens, if it was not redeemed before and its grant is active. A code
    /// presented again revokes its grant and everything issued from it.
    func redeem(codeDigest: String, issuing tokens: IssuedTokens, now: Date) async throws -> CodeRedemption
}

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

/// The gateway's access tokens, by digest.
protocol AccessTokenStore: Sendable {
    /// An unexpired access token whose grant is active, with that grant.
    func accessToken(digest: String, now: Date) async throws -> AuthenticatedAccessToken?
    /// Deletes an access token of `clientID`; `false` when it does not exist or belongs to another client.
    func deleteAccessToken(digest: String, clientID: String) async throws -> Bool
}

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

/// The keys the gateway signs downstream tokens with (``SigningKeyRing``), private halves sealed. Shared by every
/// instance, so that each publishes the keys any of them signs with.
protocol SigningKeyStore: Sendable {
    /// Every stored key, oldest first.
    func signingKeys() async throws -> [StoredSigningKey]
    /// Adds `key` unless a key created after `unlessCreatedAfter` exists (another instance rotated first): of several
    /// instances rotating at once, one adds a key. Whether `key` was added.
    func insert(signingKey key: StoredSigningKey, unlessCreatedAfter: Date) async throws -> Bool
    /// Deletes the keys with these ids (retired keys; already deleted ones are ignored).
    func deleteSigningKeys(ids: [String]) async throws
}

/// JWTs that may be used once (client assertions, identity assertions), remembered by digest until they expire.
protocol UsedAssertionStore: Sendable {
    /// Records the assertion `digest` as used until `expiresAt`; `false` when it was used before and has not expired
    /// (a replay). Several instances recording one at once: one gets `true`.
    func markUsed(digest: String, expiresAt: Date, now: Date) async throws -> Bool
}

/// Removal of what has expired, and counts for operators.
protocol StoreMaintenance: Sendable {
    /// Deletes what has expired, and clients registered before `unusedClientsBefore` that never obtained a grant.
    func sweep(now: Date, unusedClientsBefore: Date) async throws -> SweepReport
    func counts(now: Date) async throws -> StoreCounts
    /// Throws unless the database answers (`/ready`).
    func ping() async throws
}

/// The stores of one backend, and the feed their writes are announced on.
struct GatewayStorage: Sendable {
    var clients: any ClientStore
    var pendingSignIns: any PendingSignInStore
    var codes: any AuthorizationCodeStore
    var grants: any GrantStore
    var refreshTokens: any RefreshTokenStore
    var accessTokens: any AccessTokenStore
    var upstreamTokens: any UpstreamTokenStore
    var signingKeys: any SigningKeyStore
    var usedAssertions: any UsedAssertionStore
    var maintenance: any StoreMaintenance
    let changes: GrantChangeFeed
    /// Which backend, for logs and `admin` output: "sqlite" or "postgresql".
    let backend: String
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

struct AuthenticatedAccessToken: Sendable {
    var token: AccessTokenRecord
    var grant: Grant
}

enum GrantFilter: Sendable, Equatable {
    case all
    case user(subject: String)
    case client(id: String)
}

struct ClientSummary: Sendable, Equatable {
    var client: RegisteredClient
    var activeGrants: Int
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

enum CodeRedemption: Equatable, Sendable {
    case redeemed
    /// The code had been redeemed before: its grant is now revoked.
    case replayed
    case unknown
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

/// How long rows are kept after they stop working, so that a replay is recognised as one.
enum Retention {
    /// Redeemed and expired codes: a day, for replay detection.
    static let codes: TimeInterval = 86_400
    /// Revoked grants: a week, so that a reused refresh token is recognised and logged as such.
    static let revokedGrants: TimeInterval = 7 * 86_400
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
