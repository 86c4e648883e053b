import Foundation
import JWTAuth

// The gateway's storage, one small protocol per aggregate, each in a folder of its own with its values and its two
// implementations: SQLite for one instance, PostgreSQL for several instances sharing one database (the connection,
// schema and migrations of each backend are in `SQLite/` and `Postgres/`). Both pass the same conformance suite
// (`Tests/McpGatewayTests/StoreConformanceTests.swift`).
//
// Every operation that must be atomic (taking a pending sign-in, redeeming a code, rotating a refresh token, replacing
// upstream tokens that have not changed meanwhile) is one method, which an implementation runs as one transaction with
// conditional statements: it holds for concurrent requests and for concurrent instances.
//
// Writes that end or change what an access token stands for are announced on a ``GrantChangeFeed`` once they have
// committed, so that caches (``AccessTokenCache``) drop what they hold, on this instance and, through PostgreSQL's
// `NOTIFY`, on every other.

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
    /// Which backend, for logs, metrics and `admin` output.
    let backend: StorageBackend
}

/// Where the stores keep their rows.
enum StorageBackend: String, Sendable {
    /// One file, one instance (`GATEWAY_DATABASE`).
    case sqlite
    /// One database shared by every instance (`GATEWAY_DATABASE_URL`).
    case postgresql

    /// Whether other instances may write the same rows (leases, advisory locks and `NOTIFY` are then needed).
    var isShared: Bool { self == .postgresql }
}
