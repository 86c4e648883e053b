import Foundation
import GRDB

struct SQLiteStoreMaintenance: StoreMaintenance {
    let database: SQLiteStoreDatabase
    let changes: GrantChangeFeed

    func sweep(now: Date, unusedClientsBefore: Date) async throws -> SweepReport {
        let (report, clients) = try await database.write { db in
            var report = SweepReport()
            try db.execute(sql: "DELETE FROM pendingAuthorization WHERE expiresAt <= ?", arguments: [now])
            report.pendingSignIns = db.changesCount
            try db.execute(sql: "DELETE FROM accessToken WHERE expiresAt <= ?", arguments: [now])
            report.accessTokens = db.changesCount
            try db.execute(
                sql: "DELETE FROM authorizationCode WHERE expiresAt <= ?",
                arguments: [now.addingTimeInterval(-Retention.codes)])
            report.codes = db.changesCount
            // Expired grants, and revoked ones after their retention, with everything that references them.
            try db.execute(
                sql: "DELETE FROM oauthGrant WHERE expiresAt <= ? OR revokedAt <= ?",
                arguments: [now, now.addingTimeInterval(-Retention.revokedGrants)])
            report.grants = db.changesCount
            // Registrations nothing came of (anyone can register), so that /register cannot be used to fill the
            // disk. A client with a grant, even an expired one, stays until the grant goes; clients the operator
            // registered (they carry an allowed scope) stay until the operator deletes them.
            // Each announced to the client cache.
            let clients = try String.fetchAll(
                db,
                sql: """
                    DELETE FROM client WHERE createdAt <= ? AND scope IS NULL
                      AND NOT EXISTS (SELECT 1 FROM oauthGrant WHERE oauthGrant.clientID = client.id)
                    RETURNING id
                    """,
                arguments: [unusedClientsBefore])
            report.clients = clients.count
            try db.execute(sql: "DELETE FROM usedAssertion WHERE expiresAt <= ?", arguments: [now])
            report.assertions = db.changesCount
            return (report, clients)
        }
        for id in clients { changes.publish(.client(id: id)) }
        return report
    }

    func ping() async throws {
        try await database.read { db in try db.execute(sql: "SELECT 1") }
    }

    func counts(now: Date) async throws -> StoreCounts {
        try await database.read { db in
            let active = "revokedAt IS NULL AND expiresAt > ?1"
            return StoreCounts(
                clients: try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM client") ?? 0,
                activeGrants: try Int.fetchOne(
                    db, sql: "SELECT COUNT(*) FROM oauthGrant WHERE \(active)", arguments: [now]) ?? 0,
                users: try Int.fetchOne(
                    db, sql: "SELECT COUNT(DISTINCT json_extract(user, '$.subject')) FROM oauthGrant WHERE \(active)",
                    arguments: [now]) ?? 0,
                accessTokens: try Int.fetchOne(
                    db, sql: "SELECT COUNT(*) FROM accessToken WHERE expiresAt > ?", arguments: [now]) ?? 0,
                pendingSignIns: try Int.fetchOne(
                    db, sql: "SELECT COUNT(*) FROM pendingAuthorization WHERE expiresAt > ?", arguments: [now]) ?? 0)
        }
    }
}
