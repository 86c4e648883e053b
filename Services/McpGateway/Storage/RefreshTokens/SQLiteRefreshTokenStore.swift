import Foundation
import GRDB

struct SQLiteRefreshTokenStore: RefreshTokenStore {
    let database: SQLiteStoreDatabase
    let changes: GrantChangeFeed

    func grant(refreshDigest: String) async throws -> GrantSummary? {
        try await database.read { db in
            try Grant.fetchOne(
                db,
                sql: "SELECT oauthGrant.* FROM oauthGrant JOIN refreshToken ON refreshToken.grantID = oauthGrant.id "
                    + "WHERE refreshToken.digest = ?",
                arguments: [refreshDigest]
            ).map(GrantSummary.init)
        }
    }

    func rotate(refreshDigest: String, grantID: String, issuing tokens: IssuedTokens, now: Date, graceUntil: Date)
        async throws -> RefreshRotation
    {
        guard let newDigest = tokens.refreshDigest else { preconditionFailure("a rotation issues a refresh token") }
        // SQLite runs one write transaction at a time, so the grant read here cannot change before the update.
        let outcome: RefreshRotation = try await database.write { db in
            guard let grant = try Grant.fetchOne(db, key: grantID), grant.isActive(at: now) else { return .inactive }
            switch RefreshRotationRule.decide(presented: refreshDigest, grant: grant, now: now) {
            case .rotateCurrent:
                // The newest token is used: it becomes the previous one, and the one before it is no longer valid.
                try db.execute(
                    sql: """
                        UPDATE oauthGrant SET previousRefreshDigest = currentRefreshDigest, currentRefreshDigest = ?,
                          previousRefreshValidUntil = ?
                        WHERE id = ?
                        """,
                    arguments: [newDigest, graceUntil, grantID])
            case .replaceSuccessor:
                // A retry with the previous token within its grace, while the newest is still unused: replace the
                // newest, keep the grace's end.
                try db.execute(
                    sql: "UPDATE oauthGrant SET currentRefreshDigest = ? WHERE id = ?", arguments: [newDigest, grantID])
            case .revoke:
                try SQLiteGrantRows.revoke(grantID: grantID, db: db, now: now)
                return .reused
            }
            try SQLiteGrantRows.store(tokens, db: db, now: now, firstRefreshToken: false)
            return .rotated
        }
        if outcome != .rotated { changes.publish(.grant(id: grantID)) }
        return outcome
    }
}
