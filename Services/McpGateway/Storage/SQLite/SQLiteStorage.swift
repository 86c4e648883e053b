import Foundation
import GRDB
import JWTAuth
import Resilience

extension GatewayStorage {
    /// The stores on one SQLite database: the embedded default, for a single gateway instance. Only this process
    /// writes, so its own announcements are every change there is.
    static func sqlite(_ writer: any DatabaseWriter, timeout: Duration) -> GatewayStorage {
        let changes = GrantChangeFeed(complete: true)
        let database = SQLiteStoreDatabase(writer: writer, timeout: timeout)
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
            maintenance: SQLiteStoreMaintenance(database: database, changes: changes),
            changes: changes, backend: .sqlite)
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
        // Every code redemption and refresh comes here: one cached statement rather than the record's Codable insert.
        let access = tokens.access
        try db.cachedStatement(
            sql: """
                INSERT INTO accessToken (digest, grantID, clientID, scope, resource, expiresAt, dpopJKT)
                VALUES (?, ?, ?, ?, ?, ?, ?)
                """
        ).execute(arguments: [
            access.digest, access.grantID, access.clientID, access.scope.description, access.resource,
            access.expiresAt, access.dpopJKT,
        ])
        guard let refresh = tokens.refreshDigest else { return }
        try db.cachedStatement(sql: "INSERT INTO refreshToken (digest, grantID, issuedAt) VALUES (?, ?, ?)")
            .execute(arguments: [refresh, tokens.access.grantID, now])
        if firstRefreshToken {
            try db.execute(
                sql: "UPDATE oauthGrant SET currentRefreshDigest = ?, dpopJKT = ? WHERE id = ?",
                arguments: [refresh, tokens.refreshBinding, tokens.access.grantID])
        }
    }
}

/// The SQLite database as the stores use it: GRDB's reads and writes, each under `GATEWAY_DATABASE_TIMEOUT`, timed
/// into `gateway_database_operation_duration_seconds`.
///
/// SQLite is a file, but its calls can still wait: for the write lock another process holds (`McpGateway admin` on
/// the same file, a backup), or for a disk that stopped answering (a network volume). GRDB waits up to its busy
/// timeout for a lock, and interrupts the statement when the calling task is cancelled; ``Deadline`` gives up at the
/// deadline whatever the call does, so the request is answered even if the file system never returns.
struct SQLiteStoreDatabase: Sendable {
    let writer: any DatabaseWriter
    var timeout: Duration = .seconds(5)

    func read<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try await call("read") { [writer] in try await writer.read(body) }
    }

    /// A read of one statement, outside a transaction: a single SELECT sees one consistent state by itself, and the
    /// transaction `read` opens and closes around it costs more than the statement on the hot paths (a refresh).
    /// Prepare it with `db.cachedStatement(sql:)`, compiled once per connection.
    func readStatement<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try await call("read") { [writer] in try await writer.unsafeRead(body) }
    }

    func write<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try await call("write") { [writer] in try await writer.write(body) }
    }

    private func call<T: Sendable>(_ operation: String, _ work: @escaping @Sendable () async throws -> T)
        async throws -> T
    {
        let started = ContinuousClock.now
        defer {
            GatewayMetrics.databaseOperation(
                backend: StorageBackend.sqlite.rawValue, operation: operation, duration: started.duration(to: .now))
        }
        do {
            return try await Deadline.run(within: timeout, operation: "SQLite \(operation)", work)
        } catch {
            guard let unavailable = Self.unavailable(error) else { throw error }
            GatewayMetrics.dependencyFailure(.database, timedOut: error is DeadlineExceeded)
            throw unavailable
        }
    }

    /// `error` as ``DependencyUnavailable`` when the same call may succeed later: the deadline, a lock held too long,
    /// an interrupted statement, an I/O error or a full disk. A constraint or a bug is thrown as it is.
    static func unavailable(_ error: any Error) -> DependencyUnavailable? {
        if let error = error as? DeadlineExceeded {
            return DependencyUnavailable("the database", detail: error.description)
        }
        guard let error = error as? DatabaseError else { return nil }
        switch error.resultCode {
        case .SQLITE_BUSY, .SQLITE_LOCKED, .SQLITE_INTERRUPT, .SQLITE_IOERR, .SQLITE_FULL, .SQLITE_CANTOPEN,
            .SQLITE_PROTOCOL:
            return DependencyUnavailable("the database", detail: "SQLite: \(error.resultCode): \(error.message ?? "")")
        default:
            return nil
        }
    }
}
