import Foundation
import GRDB

/// The SQLite database of TodosAPI: a WAL `DatabasePool` on disk, its schema defined by migrations.
enum TodoDatabase {
    /// Opens (creating it and its folder if needed) and migrates the database at `path`. Synchronous: call it before
    /// the server starts.
    static func open(path: String) throws -> DatabasePool {
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        }
        var configuration = Configuration()
        configuration.busyMode = .timeout(5)
        let pool = try DatabasePool(path: path, configuration: configuration)
        try migrator.migrate(pool)
        return pool
    }

    /// An in-memory database, for tests.
    static func inMemory() throws -> DatabaseQueue {
        let queue = try DatabaseQueue()
        try migrator.migrate(queue)
        return queue
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
