import Foundation
import NIOCore
import PostgresNIO

struct PostgresSigningKeyStore: SigningKeyStore {
    let database: PostgresDatabaseClient

    func signingKeys() async throws -> [StoredSigningKey] {
        var keys: [StoredSigningKey] = []
        let rows = try await database.query(
            "SELECT id, sealed_by, sealed_key, created_at FROM signing_key ORDER BY created_at, id")
        for row in rows {
            let (id, sealedBy, sealedKey, createdAt) = try row.decode((String, String, ByteBuffer, Date).self)
            keys.append(
                StoredSigningKey(
                    id: id, privateKey: SealedValue(keyID: sealedBy, combined: Data(sealedKey.readableBytesView)),
                    createdAt: createdAt))
        }
        return keys
    }

    func insert(signingKey key: StoredSigningKey, unlessCreatedAfter: Date) async throws -> Bool {
        let sealed = ByteBuffer(bytes: key.privateKey.combined)
        return try await database.transaction { connection in
            // Under READ COMMITTED two transactions would both see no newer key: instances rotating at once take
            // turns on a lock of their own, and the second sees the first's key.
            try await connection.query(PostgresAdvisoryLock.signingKey)
            let inserted = try await connection.query(
                """
                INSERT INTO signing_key (id, sealed_by, sealed_key, created_at)
                SELECT \(key.id), \(key.privateKey.keyID), \(sealed), \(key.createdAt)
                WHERE NOT EXISTS (SELECT 1 FROM signing_key WHERE created_at > \(unlessCreatedAfter))
                RETURNING id
                """)
            return inserted.first() != nil
        }
    }

    func deleteSigningKeys(ids: [String]) async throws {
        guard !ids.isEmpty else { return }
        try await database.query("DELETE FROM signing_key WHERE id = ANY(\(ids))")
    }
}
