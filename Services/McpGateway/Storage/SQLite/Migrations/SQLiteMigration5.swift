import GRDB

extension SQLiteSchema {
    /// Grants without a sign-in (machine clients, identity assertions).
    static let migration5 = SQLiteMigration("v5: grants without a sign-in (machine clients, identity assertions)") { db in
        // SQLite cannot drop NOT NULL in place: the table is rebuilt (foreign keys are off during migrations, and
        // codes and tokens keep referring to the table by name).
        try db.create(table: "oauthGrant_v5") { table in
            table.primaryKey("id", .text)
            table.column("clientID", .text).notNull().references("client", onDelete: .cascade)
            // NULL for a machine client's grant (client credentials): no user.
            table.column("user", .jsonText)
            table.column("scope", .text).notNull()
            table.column("resource", .text).notNull()
            // NULL when no provider signed the user in (client credentials, an identity assertion).
            table.column("upstream", .jsonText)
            table.column("createdAt", .datetime).notNull()
            table.column("expiresAt", .datetime).notNull()
            table.column("revokedAt", .datetime)
            table.column("currentRefreshDigest", .text)
            table.column("previousRefreshDigest", .text)
            table.column("previousRefreshValidUntil", .datetime)
        }
        try db.execute(
            sql: """
                INSERT INTO oauthGrant_v5 (id, clientID, user, scope, resource, upstream, createdAt, expiresAt,
                  revokedAt, currentRefreshDigest, previousRefreshDigest, previousRefreshValidUntil)
                SELECT id, clientID, user, scope, resource, upstream, createdAt, expiresAt, revokedAt,
                  currentRefreshDigest, previousRefreshDigest, previousRefreshValidUntil FROM oauthGrant
                """)
        try db.drop(table: "oauthGrant")
        try db.rename(table: "oauthGrant_v5", to: "oauthGrant")
        try db.create(index: "oauthGrant_expiresAt", on: "oauthGrant", columns: ["expiresAt"])
        try db.create(index: "oauthGrant_clientID", on: "oauthGrant", columns: ["clientID"])
        // Machine clients and clients of identity assertions, registered by the operator.
        try db.alter(table: "client") { table in
            table.add(column: "jwks", .text)
            table.add(column: "jwksURI", .text)
            table.add(column: "scope", .text)
        }
        // Assertions (client assertions, identity assertions) already used, until they expire.
        try db.create(table: "usedAssertion") { table in
            table.primaryKey("digest", .text)
            table.column("expiresAt", .datetime).notNull().indexed()
        }
    }
}
