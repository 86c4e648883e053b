import Foundation
import GRDB

struct SQLitePendingSignInStore: PendingSignInStore {
    let database: SQLiteStoreDatabase

    func insert(pending: PendingAuthorization) async throws {
        try await database.write { db in try pending.insert(db) }
    }

    func takePending(keyDigest: String, now: Date) async throws -> PendingAuthorization? {
        try await database.write { db in
            guard let pending = try PendingAuthorization.fetchOne(db, key: keyDigest) else { return nil }
            try pending.delete(db)
            return pending.expiresAt > now ? pending : nil
        }
    }
}
