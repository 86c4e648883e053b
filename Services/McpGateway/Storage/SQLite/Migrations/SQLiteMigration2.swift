import GRDB

extension SQLiteSchema {
    /// Bounded refresh grace, redirect_uri required at /token.
    static let migration2 = SQLiteMigration("v2: bounded refresh grace, redirect_uri required at /token") { db in
        try db.alter(table: "oauthGrant") { table in
            table.add(column: "previousRefreshValidUntil", .datetime)
        }
        try db.alter(table: "authorizationCode") { table in
            table.add(column: "redirectURIRequired", .boolean).notNull().defaults(to: true)
        }
    }
}
