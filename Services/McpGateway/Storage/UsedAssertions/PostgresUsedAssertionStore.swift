import Foundation
import PostgresNIO

struct PostgresUsedAssertionStore: UsedAssertionStore {
    let database: PostgresDatabaseClient

    func markUsed(digest: String, expiresAt: Date, now: Date) async throws -> Bool {
        // One statement: of instances recording the same assertion at once, one inserts (or replaces an expired
        // row); the others' conflict updates nothing and returns no row.
        let rows = try await database.query(
            """
            INSERT INTO used_assertion AS used (digest, expires_at) VALUES (\(digest), \(expiresAt))
            ON CONFLICT (digest) DO UPDATE SET expires_at = excluded.expires_at WHERE used.expires_at <= \(now)
            RETURNING digest
            """)
        return rows.first() != nil
    }
}
