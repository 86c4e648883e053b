import Foundation
import JWTAuth
import PostgresNIO

struct PostgresGrantStore: GrantStore {
    let database: PostgresDatabaseClient
    let changes: GrantChangeFeed

    func grant(id: String) async throws -> Grant? {
        try await database.query("SELECT \(unescaped: PostgresRecords.grantColumns) FROM oauth_grant WHERE id = \(id)")
            .first().map(PostgresRecords.grant)
    }

    func insert(grant: Grant, issuing tokens: IssuedTokens) async throws {
        try await database.transaction { connection in
            try await PostgresGrantRows.insert(grant, connection: connection)
            try await PostgresGrantRows.store(
                tokens, connection: connection, now: grant.createdAt, firstRefreshToken: true)
        }
    }

    func bindRefreshTokens(grantID: String, currentRefreshDigest: String, dpopJKT: String) async throws {
        try await database.query(
            """
            UPDATE oauth_grant SET dpop_jkt = \(dpopJKT)
            WHERE id = \(grantID) AND dpop_jkt IS NULL AND current_refresh_digest = \(currentRefreshDigest)
            """)
    }

    @discardableResult
    func revokeGrant(id: String, now: Date) async throws -> Bool {
        let revoked = try await database.transaction { connection in
            try await PostgresGrantRows.revoke(grantID: id, connection: connection, now: now)
        }
        changes.publish(.grant(id: id))
        return revoked
    }

    func activeGrants(_ filter: GrantFilter, now: Date) async throws -> [Grant] {
        let select = "SELECT \(PostgresRecords.grantColumns) FROM oauth_grant"
        let order = "ORDER BY created_at DESC, id"
        let query: PostgresQuery =
            switch filter {
            case .all:
                """
                \(unescaped: select) WHERE revoked_at IS NULL AND expires_at > \(now) \(unescaped: order)
                """
            case .user(let subject):
                """
                \(unescaped: select) WHERE revoked_at IS NULL AND expires_at > \(now)
                  AND user_profile ->> 'subject' = \(subject) \(unescaped: order)
                """
            case .client(let id):
                """
                \(unescaped: select) WHERE revoked_at IS NULL AND expires_at > \(now)
                  AND client_id = \(id) \(unescaped: order)
                """
            }
        return try await database.query(query).all().map(PostgresRecords.grant)
    }
}
