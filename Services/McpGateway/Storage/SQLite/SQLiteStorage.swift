import Foundation
import GRDB

extension GatewayStorage {
    /// The stores on one SQLite database: the embedded default, for a single gateway instance. Only this process
    /// writes, so its own announcements are every change there is.
    static func sqlite(_ writer: any DatabaseWriter) -> GatewayStorage {
        let changes = GrantChangeFeed(complete: true)
        let database = SQLiteStoreDatabase(writer: writer)
        return GatewayStorage(
            clients: SQLiteClientStore(database: database, changes: changes),
            pendingSignIns: SQLitePendingSignInStore(database: database),
            codes: SQLiteAuthorizationCodeStore(database: database, changes: changes),
            grants: SQLiteGrantStore(database: database, changes: changes),
            refreshTokens: SQLiteRefreshTokenStore(database: database, changes: changes),
            accessTokens: SQLiteAccessTokenStore(database: database, changes: changes),
            upstreamTokens: SQLiteUpstreamTokenStore(database: database, changes: changes),
            signingKeys: SQLiteSigningKeyStore(database: database),
            usedAssertions: SQLiteUsedAssertionStore(database: database),
            maintenance: SQLiteStoreMaintenance(database: database),
            changes: changes, backend: "sqlite")
    }
}

/// Statements more than one SQLite store runs inside its own transaction.
enum SQLiteGrantRows {
    /// Revokes a grant and deletes its access tokens; `true` when the grant was active until now.
    @discardableResult
    static func revoke(grantID: String, db: Database, now: Date) throws -> Bool {
        try db.execute(
            sql: "UPDATE oauthGrant SET revokedAt = ? WHERE id = ? AND revokedAt IS NULL AND expiresAt > ?",
            arguments: [now, grantID, now])
        let revoked = db.changesCount == 1
        try db.execute(sql: "DELETE FROM accessToken WHERE grantID = ?", arguments: [grantID])
        return revoked
    }

    /// Stores the tokens a redemption or rotation issues; a redemption's refresh token becomes the grant's first.
    static func store(_ tokens: IssuedTokens, db: Database, now: Date, firstRefreshToken: Bool) throws {
        try tokens.access.insert(db)
        guard let refresh = tokens.refreshDigest else { return }
        try db.execute(
            sql: "INSERT INTO refreshToken (digest, grantID, issuedAt) VALUES (?, ?, ?)",
            arguments: [refresh, tokens.access.grantID, now])
        if firstRefreshToken {
            try db.execute(
                sql: "UPDATE oauthGrant SET currentRefreshDigest = ?, dpopJKT = ? WHERE id = ?",
                arguments: [refresh, tokens.refreshBinding, tokens.access.grantID])
        }
    }
}

/// The SQLite database as the stores use it: GRDB's reads and writes, timed into
/// `gateway_database_operation_duration_seconds`.
struct SQLiteStoreDatabase: Sendable {
    let writer: any DatabaseWriter

    func read<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        let started = ContinuousClock.now
        defer { Self.record("read", since: started) }
        return try await writer.read(body)
    }

    func write<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        let started = ContinuousClock.now
        defer { Self.record("write", since: started) }
        return try await writer.write(body)
    }

    private static func record(_ operation: String, since started: ContinuousClock.Instant) {
        GatewayMetrics.databaseOperation(backend: "sqlite", operation: operation, duration: started.duration(to: .now))
    }
}
