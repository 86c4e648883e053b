import Foundation
import GRDB

/// Opening a service's SQLite database the same way everywhere.
public enum SQLiteFile {
    /// Opens (creating it and its folder if needed) and migrates the database at `path`: a WAL `DatabasePool`, one
    /// writer and concurrent readers, waiting up to 5 s on a busy database. `migrate` is synchronous: call this before
    /// the server starts.
    public static func openPool(path: String, migrator: DatabaseMigrator) throws -> DatabasePool {
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

    /// Opens and migrates the database at `path` as a single connection (`DatabaseQueue`) in WAL mode: every access,
    /// read or write, is serialized on it. For a service whose queries take microseconds, this costs less than a
    /// pool's bookkeeping of concurrent readers, which measured as much as the query itself; other processes can
    /// still read the file concurrently (WAL).
    public static func openQueue(path: String, migrator: DatabaseMigrator) throws -> DatabaseQueue {
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        }
        var configuration = Configuration()
        configuration.busyMode = .timeout(5)
        configuration.journalMode = .wal
        let queue = try DatabaseQueue(path: path, configuration: configuration)
        try migrator.migrate(queue)
        return queue
    }

    /// A private in-memory database with the schema, for tests.
    public static func inMemory(migrator: DatabaseMigrator) throws -> DatabaseQueue {
        let queue = try DatabaseQueue()
        try migrator.migrate(queue)
        return queue
    }
}
