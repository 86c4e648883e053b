import Foundation
import JWTAuth
import PostgresNIO

struct PostgresUpstreamTokenStore: UpstreamTokenStore {
    let database: PostgresDatabaseClient
    let changes: GrantChangeFeed

    func updateUpstream(grantID: String, tokens: UpstreamTokens) async throws {
        try await database.transaction { connection in
            try await connection.query(
                "UPDATE oauth_grant SET upstream = \(tokens) WHERE id = \(grantID)")
            try await PostgresDatabaseClient.notify(.grant(id: grantID), on: connection)
        }
        changes.publish(.grant(id: grantID))
    }

    func replaceUpstream(grantID: String, expected: UpstreamTokens, with tokens: UpstreamTokens) async throws -> Bool {
        let replaced = try await database.transaction { connection in
            // The row is locked while it is compared: of several instances starting the same refresh, one wins.
            // The comparison is of decoded values, as in SQLite: jsonb normalizes what it stores.
            guard
                let row = try await connection.query(
                    "SELECT upstream FROM oauth_grant WHERE id = \(grantID) FOR UPDATE").first(),
                try row.makeRandomAccess()["upstream"].decode(UpstreamTokens.self) == expected
            else { return false }
            try await connection.query(
                "UPDATE oauth_grant SET upstream = \(tokens) WHERE id = \(grantID)")
            try await PostgresDatabaseClient.notify(.grant(id: grantID), on: connection)
            return true
        }
        if replaced { changes.publish(.grant(id: grantID)) }
        return replaced
    }

    func sealingKeyIDs(now: Date) async throws -> Set<String> {
        var ids = Set<String>()
        for id in try await database.query(
            """
            SELECT upstream -> 'accessToken' ->> 'keyID' FROM oauth_grant
              WHERE revoked_at IS NULL AND expires_at > \(now)
            UNION
            SELECT upstream -> 'refreshToken' ->> 'keyID' FROM oauth_grant
              WHERE revoked_at IS NULL AND expires_at > \(now) AND upstream -> 'refreshToken' ->> 'keyID' IS NOT NULL
            """
        ).decode(String.self) {
            ids.insert(id)
        }
        return ids
    }
}
