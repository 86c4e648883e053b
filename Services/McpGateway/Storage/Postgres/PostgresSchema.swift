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
            ]),
        Migration(
            version: 2, name: "refresh token rotation in one round trip; revoked grants indexed for the sweep",
            statements: [
                "CREATE INDEX oauth_grant_revoked_at ON oauth_grant (revoked_at) WHERE revoked_at IS NOT NULL",
                // The rule of RefreshRotation (RefreshRotationRule in Swift), applied where the row is: one call is
                // one transaction that holds the grant's row (FOR UPDATE) from the decision to the new tokens. A
                // refresh grant then costs one round trip to the database instead of six.
                """
                CREATE FUNCTION gateway_rotate_refresh_token(
                  p_presented text, p_grant text, p_new_refresh text, p_access_digest text, p_client text,
                  p_scope text, p_resource text, p_access_expires timestamptz, p_now timestamptz,
                  p_grace_until timestamptz)
                RETURNS text LANGUAGE plpgsql AS $$
                DECLARE
                  g oauth_grant%ROWTYPE;
                BEGIN
                  SELECT * INTO g FROM oauth_grant WHERE id = p_grant FOR UPDATE;
                  IF NOT FOUND OR g.revoked_at IS NOT NULL OR g.expires_at <= p_now THEN
                    RETURN 'inactive';
                  END IF;
                  IF g.current_refresh_digest = p_presented THEN
                    -- The newest token: it becomes the previous one, a grace token until p_grace_until.
                    UPDATE oauth_grant SET previous_refresh_digest = current_refresh_digest,
                      current_refresh_digest = p_new_refresh, previous_refresh_valid_until = p_grace_until
                    WHERE id = p_grant;
                  ELSIF g.previous_refresh_digest = p_presented AND g.previous_refresh_valid_until >= p_now THEN
                    -- A retry within the grace, the newest still unused: it is replaced; the grace keeps its end.
                    UPDATE oauth_grant SET current_refresh_digest = p_new_refresh WHERE id = p_grant;
                  ELSE
                    -- Anything else is a replay: the grant is revoked with its access tokens.
                    UPDATE oauth_grant SET revoked_at = p_now WHERE id = p_grant;
                    DELETE FROM access_token WHERE grant_id = p_grant;
                    PERFORM pg_notify('mcp_gateway_changes', 'g:' || p_grant);
                    RETURN 'reused';
                  END IF;
                  INSERT INTO access_token (digest, grant_id, client_id, scope, resource, expires_at)
                  VALUES (p_access_digest, p_grant, p_client, p_scope, p_resource, p_access_expires);
                  INSERT INTO refresh_token (digest, grant_id, issued_at) VALUES (p_new_refresh, p_grant, p_now);
                  RETURN 'rotated';
                END
                $$
                """,
            ]),
        Migration(
            version: 3, name: "the keys downstream tokens are signed with",
            statements: [
                """
                CREATE TABLE signing_key (
                  id text PRIMARY KEY,
                  sealed_by text NOT NULL,
                  sealed_key bytea NOT NULL,
                  created_at timestamptz NOT NULL
                )
                """
            ]),
        Migration(
            version: 4, name: "grants without a sign-in (machine clients, identity assertions)",
            statements: [
                // NULL user: a machine client's grant; NULL upstream: no provider signed the user in.
                "ALTER TABLE oauth_grant ALTER COLUMN user_profile DROP NOT NULL",
                "ALTER TABLE oauth_grant ALTER COLUMN upstream DROP NOT NULL",
                "ALTER TABLE client ADD COLUMN jwks text, ADD COLUMN jwks_uri text, ADD COLUMN scope text",
                "CREATE TABLE used_assertion (digest text PRIMARY KEY, expires_at timestamptz NOT NULL)",
                "CREATE INDEX used_assertion_expires_at ON used_assertion (expires_at)",
            ]),
        Migration(
            version: 5, name: "DPoP-bound tokens",
            statements: [
                "ALTER TABLE access_token ADD COLUMN dpop_jkt text",
                "ALTER TABLE oauth_grant ADD COLUMN dpop_jkt text",
                // The rotation of migration 2, with the access token's DPoP binding.
                """
                DROP FUNCTION gateway_rotate_refresh_token(text, text, text, text, text, text, text, timestamptz,
                  timestamptz, timestamptz)
                """,
                """
                CREATE FUNCTION gateway_rotate_refresh_token(
                  p_presented text, p_grant text, p_new_refresh text, p_access_digest text, p_client text,
                  p_scope text, p_resource text, p_access_expires timestamptz, p_now timestamptz,
                  p_grace_until timestamptz, p_dpop_jkt text)
                RETURNS text LANGUAGE plpgsql AS $$
                DECLARE
                  g oauth_grant%ROWTYPE;
                BEGIN
                  SELECT * INTO g FROM oauth_grant WHERE id = p_grant FOR UPDATE;
                  IF NOT FOUND OR g.revoked_at IS NOT NULL OR g.expires_at <= p_now THEN
                    RETURN 'inactive';
                  END IF;
                  IF g.current_refresh_digest = p_presented THEN
                    UPDATE oauth_grant SET previous_refresh_digest = current_refresh_digest,
                      current_refresh_digest = p_new_refresh, previous_refresh_valid_until = p_grace_until
                    WHERE id = p_grant;
                  ELSIF g.previous_refresh_digest = p_presented AND g.previous_refresh_valid_until >= p_now THEN
                    UPDATE oauth_grant SET current_refresh_digest = p_new_refresh WHERE id = p_grant;
                  ELSE
                    UPDATE oauth_grant SET revoked_at = p_now WHERE id = p_grant;
                    DELETE FROM access_token WHERE grant_id = p_grant;
                    PERFORM pg_notify('mcp_gateway_changes', 'g:' || p_grant);
                    RETURN 'reused';
                  END IF;
                  INSERT INTO access_token (digest, grant_id, client_id, scope, resource, expires_at, dpop_jkt)
                  VALUES (p_access_digest, p_grant, p_client, p_scope, p_resource, p_access_expires, p_dpop_jkt);
                  INSERT INTO refresh_token (digest, grant_id, issued_at) VALUES (p_new_refresh, p_grant, p_now);
                  RETURN 'rotated';
                END
                $$
                """,
            ]),
    ]

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
