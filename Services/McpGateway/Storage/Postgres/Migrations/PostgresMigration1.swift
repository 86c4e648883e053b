extension PostgresSchema {
    /// Clients, pending sign-ins, grants, codes, tokens.
    static let migration1 = Migration(
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
}
