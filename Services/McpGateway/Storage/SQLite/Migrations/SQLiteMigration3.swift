import GRDB

extension SQLiteSchema {
    /// Pending sign-ins wait for the provider only.
    static let migration3 = SQLiteMigration("v3: pending sign-ins wait for the provider only") { db in
        // The consent step keeps its state in a sealed form field (ConsentTicket) since v2; no row has another
        // stage.
        try db.alter(table: "pendingAuthorization") { table in
            table.drop(column: "stage")
            table.drop(column: "csrfDigest")
        }
    }
}
