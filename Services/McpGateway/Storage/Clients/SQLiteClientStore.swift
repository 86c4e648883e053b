import Foundation
import GRDB

struct SQLiteClientStore: ClientStore {
    let database: SQLiteStoreDatabase
    let changes: GrantChangeFeed

    func insert(client: RegisteredClient) async throws {
        try await database.write { db in try client.insert(db) }
    }

    func save(client: RegisteredClient) async throws {
        let changed = try await database.write { db in
            var client = client
            if let known = try RegisteredClient.fetchOne(db, key: client.id) {
                client.createdAt = known.createdAt
                // A document fetched again unchanged (one served with no-store is fetched on every request) writes
                // nothing.
                guard client != known else { return false }
            }
            // An upsert (ON CONFLICT DO UPDATE), not a replace: replacing would delete the row and its grants with it.
            try client.upsert(db)
            return true
        }
        if changed { changes.publish(.client(id: client.id)) }
    }

    func client(id: String) async throws -> RegisteredClient? {
        try await database.read { db in try RegisteredClient.fetchOne(db, key: id) }
    }

    func clients(now: Date) async throws -> [ClientSummary] {
        try await database.read { db in
            let rows = try Row.fetchAll(
                db,
                sql: """
                    SELECT client.*, (SELECT COUNT(*) FROM oauthGrant WHERE oauthGrant.clientID = client.id
                      AND oauthGrant.revokedAt IS NULL AND oauthGrant.expiresAt > ?) AS activeGrants
                    FROM client ORDER BY createdAt DESC, id
                    """,
                arguments: [now])
            return try rows.map { row in
                ClientSummary(client: try RegisteredClient(row: row), activeGrants: row["activeGrants"])
            }
        }
    }

    func deleteClient(id: String) async throws -> Bool {
        let (deleted, grantIDs) = try await database.write { db in
            let grantIDs = try String.fetchAll(db, sql: "SELECT id FROM oauthGrant WHERE clientID = ?", arguments: [id])
            // Grants, codes and tokens go with the client (foreign keys ON DELETE CASCADE).
            try db.execute(sql: "DELETE FROM client WHERE id = ?", arguments: [id])
            return (db.changesCount == 1, grantIDs)
        }
        for grantID in grantIDs { changes.publish(.grant(id: grantID)) }
        if deleted { changes.publish(.client(id: id)) }
        return deleted
    }
}
