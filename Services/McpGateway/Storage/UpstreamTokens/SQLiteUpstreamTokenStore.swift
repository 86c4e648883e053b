import Foundation
import GRDB

struct SQLiteUpstreamTokenStore: UpstreamTokenStore {
    let database: SQLiteStoreDatabase
    let changes: GrantChangeFeed

    func updateUpstream(grantID: String, tokens: UpstreamTokens) async throws {
        try await database.write { db in
            guard var grant = try Grant.fetchOne(db, key: grantID) else { return }
            grant.upstream = tokens
            try grant.update(db, columns: ["upstream"])
        }
        changes.publish(.grant(id: grantID))
    }

    func replaceUpstream(grantID: String, expected: UpstreamTokens, with tokens: UpstreamTokens) async throws -> Bool {
        let replaced = try await database.write { db in
            guard var grant = try Grant.fetchOne(db, key: grantID), grant.upstream == expected else { return false }
            grant.upstream = tokens
            try grant.update(db, columns: ["upstream"])
            return true
        }
        if replaced { changes.publish(.grant(id: grantID)) }
        return replaced
    }

    func sealingKeyIDs(now: Date) async throws -> Set<String> {
        try await database.read { db in
            Set(
                try String.fetchAll(
                    db,
                    sql: """
                        SELECT json_extract(upstream, '$.accessToken.keyID') FROM oauthGrant
                          WHERE revokedAt IS NULL AND expiresAt > ?1
                        UNION
                        SELECT json_extract(upstream, '$.refreshToken.keyID') FROM oauthGrant
                          WHERE revokedAt IS NULL AND expiresAt > ?1
                            AND json_extract(upstream, '$.refreshToken.keyID') IS NOT NULL
                        """,
                    arguments: [now]))
        }
    }
}
