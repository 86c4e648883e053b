import Foundation
import GRDB

struct SQLiteGrantStore: GrantStore {
    let database: SQLiteStoreDatabase
    let changes: GrantChangeFeed

    func grant(id: String) async throws -> Grant? {
        try await database.read { db in try Grant.fetchOne(db, key: id) }
    }

    func insert(grant: Grant, issuing tokens: IssuedTokens) async throws {
        try await database.write { db in
            try grant.insert(db)
            try SQLiteGrantRows.store(tokens, db: db, now: grant.createdAt, firstRefreshToken: true)
        }
    }

    func bindRefreshTokens(grantID: String, currentRefreshDigest: String, dpopJKT: String) async throws {
        try await database.write { db in
            try db.execute(
                sql: "UPDATE oauthGrant SET dpopJKT = ? WHERE id = ? AND dpopJKT IS NULL AND currentRefreshDigest = ?",
                arguments: [dpopJKT, grantID, currentRefreshDigest])
        }
    }

    @discardableResult
    func revokeGrant(id: String, now: Date) async throws -> Bool {
        let revoked = try await database.write { db in try SQLiteGrantRows.revoke(grantID: id, db: db, now: now) }
        changes.publish(.grant(id: id))
        return revoked
    }

    func activeGrants(_ filter: GrantFilter, now: Date) async throws -> [Grant] {
        try await database.read { db in
            var sql = "SELECT * FROM oauthGrant WHERE revokedAt IS NULL AND expiresAt > ?"
            var arguments: StatementArguments = [now]
            switch filter {
            case .all: break
            case .user(let subject):
                sql += " AND json_extract(user, '$.subject') = ?"
                arguments += [subject]
            case .client(let id):
                sql += " AND clientID = ?"
                arguments += [id]
            }
            return try Grant.fetchAll(db, sql: sql + " ORDER BY createdAt DESC, id", arguments: arguments)
        }
    }
}
