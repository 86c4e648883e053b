extension PostgresSchema {
    /// The keys downstream tokens are signed with.
    static let migration3 = Migration(
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
        ])
}
