import Foundation
import GRDB
import ServiceSupport

/// The SQLite database of TodosAPI: one WAL connection on disk (see `SQLiteFile.openQueue` for why not a pool), its
/// schema defined by migrations.
enum TodoDatabase {
    /// Opens and migrates the database at `path` (see `SQLiteFile`). Synchronous: run it before the server starts.
    ///
    /// - Parameter legacyOwnerIssuer: The issuer whose subjects the owners of a database from before owners had an
    ///   issuer were (the provider TodosAPI trusted then).
    static func open(path: String, legacyOwnerIssuer: String) throws -> DatabaseQueue {
        try SQLiteFile.openQueue(path: path, migrator: migrator(legacyOwnerIssuer: legacyOwnerIssuer))
    }

    /// A private in-memory database, for tests.
    static func inMemory() throws -> DatabaseQueue {
        try SQLiteFile.inMemory(migrator: migrator(legacyOwnerIssuer: ""))
    }

    static func migrator(legacyOwnerIssuer: String) -> DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1: todos and owners") { db in
            try db.create(table: "owner") { table in
                table.primaryKey("sub", .text)
                table.column("firstSeenAt", .datetime).notNull()
            }
            try db.create(table: "todo") { table in
                table.primaryKey("id", .text)
                table.column("owner", .text).notNull()
                table.column("title", .text).notNull()
                table.column("description", .text).notNull().defaults(to: "")
                table.column("due", .text)
                table.column("completed", .boolean).notNull().defaults(to: false)
                table.column("createdAt", .datetime).notNull()
                table.column("updatedAt", .datetime).notNull()
            }
            try db.create(index: "todo_by_owner", on: "todo", columns: ["owner"])
        }
        // A `sub` is unique only within its issuer: owners become (issuer, subject) pairs. Existing owners were
        // subjects of the provider TodosAPI trusted (`legacyOwnerIssuer`); when it trusted only the gateway, that
        // issuer is not known here, and stays empty until the first issuer presenting the subject takes the owner.
        migrator.registerMigration("v2: owners are an issuer and a subject") { db in
            try db.create(table: "ownerNew") { table in
                table.column("issuer", .text).notNull()
                table.column("sub", .text).notNull()
                table.column("firstSeenAt", .datetime).notNull()
                table.primaryKey(["issuer", "sub"])
            }
            try db.execute(
                sql: "INSERT INTO ownerNew (issuer, sub, firstSeenAt) SELECT ?, sub, firstSeenAt FROM owner",
                arguments: [legacyOwnerIssuer])
            try db.drop(table: "owner")
            try db.rename(table: "ownerNew", to: "owner")
            try db.alter(table: "todo") { table in
                table.add(column: "ownerIssuer", .text).notNull().defaults(to: "")
            }
            try db.execute(sql: "UPDATE todo SET ownerIssuer = ?", arguments: [legacyOwnerIssuer])
            try db.drop(index: "todo_by_owner")
            try db.create(index: "todo_by_owner", on: "todo", columns: ["ownerIssuer", "owner"])
        }
        return migrator
    }
}
