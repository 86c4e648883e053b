import Foundation
import PostgresNIO

struct PostgresStoreMaintenance: StoreMaintenance {
    let database: PostgresDatabaseClient
    let changes: GrantChangeFeed

    func sweep(now: Date, unusedClientsBefore: Date) async throws -> SweepReport {
        let (report, clients) = try await database.transaction { connection in
            // Every instance sweeps once a minute; one at a time is enough, and concurrent sweeps would only wait
            // for each other's row locks. The lock ends with the transaction.
            let lock = try await connection.query(PostgresAdvisoryLock.sweep).first()
            guard try lock?.decode(Bool.self) == true else { return (SweepReport(), [String]()) }
            func count(_ query: PostgresQuery) async throws -> Int {
                var rows = 0
                for _ in try await connection.query(query) { rows += 1 }
                return rows
            }
            var report = SweepReport()
            report.pendingSignIns = try await count(
                "DELETE FROM pending_authorization WHERE expires_at <= \(now) RETURNING 1")
            report.accessTokens = try await count("DELETE FROM access_token WHERE expires_at <= \(now) RETURNING 1")
            report.codes = try await count(
                """
                DELETE FROM authorization_code WHERE expires_at <= \(now.addingTimeInterval(-Retention.codes)) RETURNING 1
                """)
            // Expired grants, and revoked ones after their retention, with everything that references them.
            report.grants = try await count("DELETE FROM oauth_grant WHERE expires_at <= \(now) RETURNING 1")
            report.grants += try await count(
                """
                DELETE FROM oauth_grant WHERE revoked_at <= \(now.addingTimeInterval(-Retention.revokedGrants))
                RETURNING 1
                """)
            // Registrations nothing came of (anyone can register), so that /register cannot be used to fill the
            // disk. A client with a grant, even an expired one, stays until the grant goes; clients the operator
            // registered (they carry an allowed scope) stay until the operator deletes them.
            // Each announced to the instances' client caches.
            let clients = try await connection.query(
                """
                DELETE FROM client WHERE created_at <= \(unusedClientsBefore) AND scope IS NULL
                  AND NOT EXISTS (SELECT 1 FROM oauth_grant WHERE oauth_grant.client_id = client.id)
                RETURNING id
                """
            ).decode(String.self)
            for id in clients { try await PostgresDatabaseClient.notify(.client(id: id), on: connection) }
            report.clients = clients.count
            report.assertions = try await count("DELETE FROM used_assertion WHERE expires_at <= \(now) RETURNING 1")
            return (report, clients)
        }
        for id in clients { changes.publish(.client(id: id)) }
        return report
    }

    func ping() async throws {
        try await database.query("SELECT 1")
    }

    func counts(now: Date) async throws -> StoreCounts {
        guard
            let row = try await database.query(
                """
                SELECT (SELECT count(*) FROM client) AS clients,
                  (SELECT count(*) FROM oauth_grant WHERE revoked_at IS NULL AND expires_at > \(now)) AS active_grants,
                  (SELECT count(DISTINCT user_profile ->> 'subject') FROM oauth_grant
                     WHERE revoked_at IS NULL AND expires_at > \(now)) AS users,
                  (SELECT count(*) FROM access_token WHERE expires_at > \(now)) AS access_tokens,
                  (SELECT count(*) FROM pending_authorization WHERE expires_at > \(now)) AS pending_sign_ins
                """
            ).first()
        else { return StoreCounts(clients: 0, activeGrants: 0, users: 0, accessTokens: 0, pendingSignIns: 0) }
        let cells = row.makeRandomAccess()
        func value(_ name: String) throws -> Int { Int(try cells[name].decode(Int64.self)) }
        return StoreCounts(
            clients: try value("clients"), activeGrants: try value("active_grants"), users: try value("users"),
            accessTokens: try value("access_tokens"), pendingSignIns: try value("pending_sign_ins"))
    }
}
