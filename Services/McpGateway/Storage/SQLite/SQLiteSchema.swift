import Foundation
import GRDB
import ServiceSupport

/// The gateway's SQLite schema, defined by migrations. Codes, access and refresh tokens reference their grant and go
/// with it; grants reference their client and go with it.
/// One step of the schema: its identifier (recorded as applied) and what it changes.
struct SQLiteMigration: Sendable {
    let identifier: String
    let apply: @Sendable (Database) throws -> Void

    init(_ identifier: String, apply: @escaping @Sendable (Database) throws -> Void) {
        self.identifier = identifier
        self.apply = apply
    }
}

enum SQLiteSchema {
    /// Opens and migrates the database at `path` (see `SQLiteFile`). Synchronous: run it before the server starts.
    static func open(path: String) throws -> DatabasePool {
        try SQLiteFile.openPool(path: path, migrator: migrator)
    }

    /// A private in-memory database, for tests.
    static func inMemory() throws -> DatabaseQueue {
        try SQLiteFile.inMemory(migrator: migrator)
    }

    /// Every migration, oldest first, one file each in `Migrations/`. Their identifiers are what GRDB records as
    /// applied: never change one that has shipped.
    static let migrations = [migration1, migration2, migration3, migration4, migration5, migration6]

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        for migration in migrations { migrator.registerMigration(migration.identifier, migrate: migration.apply) }
        return migrator
    }
}

extension RegisteredClient: FetchableRecord, PersistableRecord {
    static let databaseTableName = "client"
}

extension PendingAuthorization: FetchableRecord, PersistableRecord {
    static let databaseTableName = "pendingAuthorization"
}

extension Grant: FetchableRecord, PersistableRecord {
    static let databaseTableName = "oauthGrant"
}

extension AuthorizationCodeRecord: FetchableRecord, PersistableRecord {
    static let databaseTableName = "authorizationCode"
}

extension AccessTokenRecord: FetchableRecord, PersistableRecord {
    static let databaseTableName = "accessToken"
}
