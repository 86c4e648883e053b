import Foundation
import GRDB
import JWTAuth

struct SQLiteRefreshTokenStore: RefreshTokenStore {
    let database: SQLiteStoreDatabase
    let changes: GrantChangeFeed

    /// Every refresh asks this first, so it reads the columns of a summary and no more: not the provider's tokens,
    /// whose JSON (with the user's) made decoding the whole grant through Codable the largest cost of a refresh.
    func grant(refreshDigest: String) async throws -> GrantSummary? {
        try await database.readStatement { db in
            try Row.fetchOne(
                db.cachedStatement(
                    sql: """
                        SELECT oauthGrant.id, clientID, user, scope, resource, expiresAt, revokedAt, dpopJKT,
                          currentRefreshDigest, previousRefreshDigest, previousRefreshValidUntil
                        FROM oauthGrant JOIN refreshToken ON refreshToken.grantID = oauthGrant.id
                        WHERE refreshToken.digest = ?
                        """),
                arguments: [refreshDigest]
            ).map(GrantSummary.init(row:))
        }
    }

    func rotate(refreshDigest: String, grantID: String, issuing tokens: IssuedTokens, now: Date, graceUntil: Date)
        async throws -> RefreshRotation
    {
        guard let newDigest = tokens.refreshDigest else { preconditionFailure("a rotation issues a refresh token") }
        // SQLite runs one write transaction at a time, so the grant read here cannot change before the update.
        let outcome: RefreshRotation = try await database.write { db in
            // The rotation's state and whether the grant is active: the rule needs nothing else.
            guard
                let row = try Row.fetchOne(
                    db.cachedStatement(
                        sql: """
                            SELECT currentRefreshDigest, previousRefreshDigest, previousRefreshValidUntil FROM oauthGrant
                            WHERE id = ? AND revokedAt IS NULL AND expiresAt > ?
                            """),
                    arguments: [grantID, now])
            else { return .inactive }
            let rule = RefreshRotationRule.decide(
                presented: refreshDigest, current: row[0], previous: row[1], previousValidUntil: row[2], now: now)
            switch rule {
            case .rotateCurrent:
                // The newest token is used: it becomes the previous one, and the one before it is no longer valid.
                try db.cachedStatement(
                    sql: """
                        UPDATE oauthGrant SET previousRefreshDigest = currentRefreshDigest, currentRefreshDigest = ?,
                          previousRefreshValidUntil = ?
                        WHERE id = ?
                        """
                ).execute(arguments: [newDigest, graceUntil, grantID])
            case .replaceSuccessor:
                // A retry with the previous token within its grace, while the newest is still unused: replace the
                // newest, keep the grace's end.
                try db.cachedStatement(sql: "UPDATE oauthGrant SET currentRefreshDigest = ? WHERE id = ?")
                    .execute(arguments: [newDigest, grantID])
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

extension GrantSummary {
    /// A summary from a row of `oauthGrant` that selects its columns (``SQLiteRefreshTokenStore/grant(refreshDigest:)``),
    /// decoded as GRDB stores a ``Grant``: `user` as JSON, with the decoder GRDB uses for it.
    init(row: Row) throws {
        let user: UserProfile? = try (row["user"] as String?).flatMap { json in
            try Grant.databaseJSONDecoder(for: "user").decode(UserProfile?.self, from: Data(json.utf8))
        }
        self.init(
            id: row["id"], clientID: row["clientID"], user: user, scope: ScopeSet(spaceSeparated: row["scope"]),
            resource: row["resource"], expiresAt: row["expiresAt"], revokedAt: row["revokedAt"],
            dpopJKT: row["dpopJKT"], currentRefreshDigest: row["currentRefreshDigest"],
            previousRefreshDigest: row["previousRefreshDigest"],
            previousRefreshValidUntil: row["previousRefreshValidUntil"])
    }
}
