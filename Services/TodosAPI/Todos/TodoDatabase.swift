import Foundation
import GRDB
import ServiceSupport

/// The SQLite database of TodosAPI: one WAL connection on disk (see `SQLiteFile.openQueue` for why not a pool), its
/// schema defined by migrations.
enum TodoDatabase {
    /// Opens and migrates the database at `path` (see `SQLiteFile`). Synchronous: run it before the server starts.
    static func open(path: String) throws -> DatabaseQueue {
        try SQLiteFile.openQueue(path: path, migrator: migrator)
    }

    /// A private in-memory database, for tests.
    static func inMemory() throws -> DatabaseQueue {
        try SQLiteFile.inMemory(migrator: migrator)
    }

    static var migrator: DatabaseMigrator {
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
        return migrator
    }
}
