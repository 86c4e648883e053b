import Foundation
import GRDB

struct SQLiteAuthorizationCodeStore: AuthorizationCodeStore {
    let database: SQLiteStoreDatabase
    let changes: GrantChangeFeed

    func insert(grant: Grant, code: AuthorizationCodeRecord) async throws {
        try await database.write { db in
            try grant.insert(db)
            try code.insert(db)
        }
    }

    func code(digest: String) async throws -> AuthorizationCodeRecord? {
        try await database.read { db in try AuthorizationCodeRecord.fetchOne(db, key: digest) }
    }

    func redeem(codeDigest: String, issuing tokens: IssuedTokens, now: Date) async throws -> CodeRedemption {
        let (outcome, revokedGrant): (CodeRedemption, String?) = try await database.write { db in
            // Only the first redemption of an unexpired code of an active grant changes the row.
            try db.execute(
                sql: """
                    UPDATE authorizationCode SET redeemedAt = ?
                    WHERE digest = ? AND redeemedAt IS NULL AND expiresAt > ?
                      AND grantID IN (SELECT id FROM oauthGrant WHERE revokedAt IS NULL AND expiresAt > ?)
                    """,
                arguments: [now, codeDigest, now, now])
            if db.changesCount == 1 {
                try SQLiteGrantRows.store(tokens, db: db, now: now, firstRefreshToken: true)
                return (.redeemed, nil)
            }
            guard let code = try AuthorizationCodeRecord.fetchOne(db, key: codeDigest), code.redeemedAt != nil else {
                return (.unknown, nil)
            }
            // RFC 6749 §4.1.2: a code used twice revokes what it issued.
            try SQLiteGrantRows.revoke(grantID: code.grantID, db: db, now: now)
            return (.replayed, code.grantID)
        }
        if let revokedGrant { changes.publish(.grant(id: revokedGrant)) }
        return outcome
    }
}
