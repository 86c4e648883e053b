import Foundation
import Logging
import PostgresNIO

/// The gateway's PostgreSQL schema, as numbered migrations (the same tables as ``SQLiteSchema``, in PostgreSQL's
/// conventions: snake_case, `timestamptz`, `jsonb`, `text[]`).
///
/// Instances that start together migrate one at a time: each takes a transaction-scoped advisory lock first, and
/// applies, in that transaction, the migrations no one has recorded yet.
enum PostgresSchema {
    struct Migration {
        let version: Int
        let name: String
        let statements: [String]
    }

    /// Every migration, oldest first, one file each in `Migrations/`; a shipped one never changes.
    static let migrations: [Migration] = [migration1, migration2, migration3, migration4, migration5]

    /// Applies the migrations this database lacks; returns the versions applied.
    @discardableResult
    ///
    /// A migration may rewrite a large table: its transaction has ten minutes, and lifts the statement and lock
    /// timeouts every other call has (it waits for another instance's migration on the advisory lock).
    static func migrate(_ database: PostgresDatabaseClient) async throws -> [Int] {
        try await database.transaction(timeout: .seconds(600)) { connection in
            try await connection.query("SET LOCAL statement_timeout = 0")
            try await connection.query("SET LOCAL lock_timeout = 0")
            // Any 64-bit number that the gateway alone uses; held until this transaction ends.
            try await connection.query("SELECT pg_advisory_xact_lock(7239055151807010001)")
            try await connection.query(
                """
                CREATE TABLE IF NOT EXISTS gateway_schema_migration (
                  version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())
                """)
            var applied = Set<Int>()
            for version in try await connection.query(
                "SELECT version FROM gateway_schema_migration").decode(Int.self) {
                applied.insert(version)
            }
            if let newest = applied.max(), newest > (migrations.last?.version ?? 0) {
                throw PostgresSchemaError.newerThanThisGateway(newest)
            }
            var done: [Int] = []
            for migration in migrations where !applied.contains(migration.version) {
                for statement in migration.statements {
                    try await connection.query(PostgresQuery(unsafeSQL: statement))
                }
                try await connection.query(
                    """
                    INSERT INTO gateway_schema_migration (version, name) VALUES (\(migration.version), \(migration.name))
                    """)
                done.append(migration.version)
            }
            return done
        }
    }
}

enum PostgresSchemaError: Error, CustomStringConvertible {
    case newerThanThisGateway(Int)

    var description: String {
        switch self {
        case .newerThanThisGateway(let version):
            "The database's schema is at version \(version), newer than this gateway knows: run the newer gateway, or "
                + "restore a backup taken before it migrated"
        }
    }
}
