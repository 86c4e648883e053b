import Foundation
import GRDB

struct SQLiteSigningKeyStore: SigningKeyStore {
    let database: SQLiteStoreDatabase

    func signingKeys() async throws -> [StoredSigningKey] {
        try await database.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM signingKey ORDER BY createdAt, id").map { row in
                StoredSigningKey(
                    id: row["id"], privateKey: SealedValue(keyID: row["sealedBy"], combined: row["sealedKey"]),
                    createdAt: row["createdAt"])
            }
        }
    }

    func insert(signingKey key: StoredSigningKey, unlessCreatedAfter: Date) async throws -> Bool {
        try await database.write { db in
            // One conditional statement; SQLite has one writer, so two gateways on one file cannot both insert.
            try db.execute(
                sql: """
                    INSERT INTO signingKey (id, sealedBy, sealedKey, createdAt)
                    SELECT ?, ?, ?, ? WHERE NOT EXISTS (SELECT 1 FROM signingKey WHERE createdAt > ?)
                    """,
                arguments: [
                    key.id, key.privateKey.keyID, key.privateKey.combined, key.createdAt, unlessCreatedAfter,
                ])
            return db.changesCount == 1
        }
    }

    func deleteSigningKeys(ids: [String]) async throws {
        guard !ids.isEmpty else { return }
        try await database.write { db in
            for id in ids { try db.execute(sql: "DELETE FROM signingKey WHERE id = ?", arguments: [id]) }
        }
    }
}
