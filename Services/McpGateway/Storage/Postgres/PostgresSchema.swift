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

    static let migrations: [Migration] = [
        Migration(
            version: 1, name: "clients, pending sign-ins, grants, codes, tokens",
            statements: [
                """
                CREATE TABLE client (
                  id text PRIMARY KEY,
                  secret_digest text,
                  auth_method text NOT NULL,
                  name text,
                  uri text,
                  logo_uri text,
                  redirect_uris text[] NOT NULL,
                  grant_types text[] NOT NULL,
                  created_at timestamptz NOT NULL
                )
                """,
                """
                CREATE TABLE pending_authorization (
                  key_digest text PRIMARY KEY,
                  binding_digest text NOT NULL,
                  request jsonb NOT NULL,
                  upstream_nonce text NOT NULL,
                  upstream_verifier jsonb NOT NULL,
                  expires_at timestamptz NOT NULL
                )
                """,
                "CREATE INDEX pending_authorization_expires_at ON pending_authorization (expires_at)",
                """
                CREATE TABLE oauth_grant (
                  id text PRIMARY KEY,
                  client_id text NOT NULL REFERENCES client (id) ON DELETE CASCADE,
                  user_profile jsonb NOT NULL,
                  scope text NOT NULL,
                  resource text NOT NULL,
                  upstream jsonb NOT NULL,
                  created_at timestamptz NOT NULL,
                  expires_at timestamptz NOT NULL,
                  revoked_at timestamptz,
                  current_refresh_digest text,
                  previous_refresh_digest text,
                  previous_refresh_valid_until timestamptz
                )
                """,
                "CREATE INDEX oauth_grant_client_id ON oauth_grant (client_id)",
                "CREATE INDEX oauth_grant_expires_at ON oauth_grant (expires_at)",
                "CREATE INDEX oauth_grant_user_subject ON oauth_grant ((user_profile ->> 'subject'))",
                """
                CREATE TABLE authorization_code (
                  digest text PRIMARY KEY,
                  grant_id text NOT NULL REFERENCES oauth_grant (id) ON DELETE CASCADE,
                  client_id text NOT NULL,
                  redirect_uri text NOT NULL,
                  redirect_uri_required boolean NOT NULL,
                  code_challenge text NOT NULL,
                  resource text,
                  expires_at timestamptz NOT NULL,
                  redeemed_at timestamptz
                )
                """,
                "CREATE INDEX authorization_code_grant_id ON authorization_code (grant_id)",
                """
                CREATE TABLE access_token (
                  digest text PRIMARY KEY,
                  grant_id text NOT NULL REFERENCES oauth_grant (id) ON DELETE CASCADE,
                  client_id text NOT NULL,
                  scope text NOT NULL,
                  resource text NOT NULL,
                  expires_at timestamptz NOT NULL
                )
                """,
                "CREATE INDEX access_token_grant_id ON access_token (grant_id)",
                "CREATE INDEX access_token_expires_at ON access_token (expires_at)",
                """
                CREATE TABLE refresh_token (
                  digest text PRIMARY KEY,
                  grant_id text NOT NULL REFERENCES oauth_grant (id) ON DELETE CASCADE,
                  issued_at timestamptz NOT NULL
                )
                """,
                "CREATE INDEX refresh_token_grant_id ON refresh_token (grant_id)",
            ])
    ]

    /// Applies the migrations this database lacks; returns the versions applied.
    @discardableResult
    static func migrate(_ database: PostgresDatabaseClient) async throws -> [Int] {
        try await database.transaction { connection in
            let logger = database.logger
            // Any 64-bit number that the gateway alone uses; held until this transaction ends.
            try await connection.query("SELECT pg_advisory_xact_lock(7239055151807010001)", logger: logger)
            try await connection.query(
                """
                CREATE TABLE IF NOT EXISTS gateway_schema_migration (
                  version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())
                """, logger: logger)
            var applied = Set<Int>()
            for try await version in try await connection.query(
                "SELECT version FROM gateway_schema_migration", logger: logger
            ).decode(Int.self) {
                applied.insert(version)
            }
            if let newest = applied.max(), newest > (migrations.last?.version ?? 0) {
                throw PostgresSchemaError.newerThanThisGateway(newest)
            }
            var done: [Int] = []
            for migration in migrations where !applied.contains(migration.version) {
                for statement in migration.statements {
                    try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                }
                try await connection.query(
                    """
                    INSERT INTO gateway_schema_migration (version, name) VALUES (\(migration.version), \(migration.name))
                    """, logger: logger)
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
