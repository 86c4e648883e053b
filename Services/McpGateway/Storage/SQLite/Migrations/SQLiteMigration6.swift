import GRDB

extension SQLiteSchema {
    /// DPoP-bound tokens.
    static let migration6 = SQLiteMigration("v6: DPoP-bound tokens") { db in
        // The RFC 7638 thumbprint of the key an access token, or a public client's refresh tokens, are bound to.
        try db.alter(table: "accessToken") { table in table.add(column: "dpopJKT", .text) }
        try db.alter(table: "oauthGrant") { table in table.add(column: "dpopJKT", .text) }
    }
}
