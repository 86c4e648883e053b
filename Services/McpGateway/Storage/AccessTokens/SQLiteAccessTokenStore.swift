import Foundation
import GRDB

struct SQLiteAccessTokenStore: AccessTokenStore {
    let database: SQLiteStoreDatabase
    let changes: GrantChangeFeed

    func accessToken(digest: String, now: Date) async throws -> AuthenticatedAccessToken? {
        try await database.read { db in
            guard let token = try AccessTokenRecord.fetchOne(db, key: digest), token.expiresAt > now,
                let grant = try Grant.fetchOne(db, key: token.grantID), grant.isActive(at: now)
            else { return nil }
            return AuthenticatedAccessToken(token: token, grant: grant)
        }
    }

    func deleteAccessToken(digest: String, clientID: String) async throws -> Bool {
        let deleted = try await database.write { db in
            try db.execute(
                sql: "DELETE FROM accessToken WHERE digest = ? AND clientID = ?", arguments: [digest, clientID])
            return db.changesCount > 0
        }
        if deleted { changes.publish(.accessToken(digest: digest)) }
        return deleted
    }
}
