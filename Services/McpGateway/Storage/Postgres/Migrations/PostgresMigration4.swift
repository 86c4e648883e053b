extension PostgresSchema {
    /// Grants without a sign-in (machine clients, identity assertions).
    static let migration4 = Migration(
        version: 4, name: "grants without a sign-in (machine clients, identity assertions)",
        statements: [
            // NULL user: a machine client's grant; NULL upstream: no provider signed the user in.
            "ALTER TABLE oauth_grant ALTER COLUMN user_profile DROP NOT NULL",
            "ALTER TABLE oauth_grant ALTER COLUMN upstream DROP NOT NULL",
            "ALTER TABLE client ADD COLUMN jwks text, ADD COLUMN jwks_uri text, ADD COLUMN scope text",
            "CREATE TABLE used_assertion (digest text PRIMARY KEY, expires_at timestamptz NOT NULL)",
            "CREATE INDEX used_assertion_expires_at ON used_assertion (expires_at)",
        ])
}
