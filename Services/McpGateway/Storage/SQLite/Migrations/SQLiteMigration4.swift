import GRDB

extension SQLiteSchema {
    /// The keys downstream tokens are signed with.
    static let migration4 = SQLiteMigration("v4: the keys downstream tokens are signed with") { db in
        try db.create(table: "signingKey") { table in
            table.primaryKey("id", .text)
            table.column("sealedBy", .text).notNull()
            table.column("sealedKey", .blob).notNull()
            table.column("createdAt", .datetime).notNull()
        }
    }
}
