import Foundation
import GRDB

struct SQLiteUsedAssertionStore: UsedAssertionStore {
    let database: SQLiteStoreDatabase

    func markUsed(digest: String, expiresAt: Date, now: Date) async throws -> Bool {
        try await database.write { db in
            // One statement: a new digest is inserted; a known one only replaces a row that has expired.
            try db.execute(
                sql: """
                    INSERT INTO usedAssertion (digest, expiresAt) VALUES (?, ?)
                    ON CONFLICT (digest) DO UPDATE SET expiresAt = excluded.expiresAt
                    WHERE usedAssertion.expiresAt <= ?
                    """,
                arguments: [digest, expiresAt, now])
            return db.changesCount == 1
        }
    }
}
