import Foundation
import GRDB
import GRDBSQLite
import JWTAuth
import Synchronization

/// Todos in SQLite. Every statement filters on the owner, so one user's id never reaches another user's todo.
final class SQLiteTodoRepository: TodoRepository {
    private let database: any DatabaseWriter
    private let clock: any WallClock
    /// Owners already seeded, so that reads do not need a write transaction. Bounded: cleared when it gets large.
    private let seededOwners = Mutex<Set<TodoOwner>>([])

    init(database: any DatabaseWriter, clock: any WallClock = SystemClock()) {
        self.database = database
        self.clock = clock
    }

    func list(owner: TodoOwner) async throws -> [Todo] {
        try await seedIfFirstSeen(owner)
        // The API's most frequent query, so: one statement, compiled once and reused (`cachedStatement`); no
        // transaction around it (a single SELECT reads one consistent snapshot by itself); run on the calling thread
        // (an indexed read of a few rows takes microseconds, less than the two thread hops of an asynchronous read);
        // and its rows read through SQLite's C API.
        return try todos(of: owner)
    }

    /// Synchronous on purpose: see ``list(owner:)``.
    ///
    /// GRDB's cursors make a row object and an index of its column names for every query, which measured as much as
    /// SQLite's own work here; the five columns are read by position instead. GRDB still prepares, caches and binds
    /// the statement, and the statement is reset before the connection is used again.
    private func todos(of owner: TodoOwner) throws -> [Todo] {
        try database.unsafeRead { db in
            let statement = try db.cachedStatement(
                sql: """
                    SELECT id, title, description, due, completed FROM todo WHERE ownerIssuer = ? AND owner = ?
                    ORDER BY rowid
                    """)
            try statement.setArguments([owner.issuer, owner.subject])
            let sqlite = statement.sqliteStatement
            defer { sqlite3_reset(sqlite) }
            func text(_ column: Int32) -> String {
                guard let bytes = sqlite3_column_text(sqlite, column) else { return "" }
                let count = Int(sqlite3_column_bytes(sqlite, column))
                return String(decoding: UnsafeBufferPointer(start: bytes, count: count), as: UTF8.self)
            }
            var todos: [Todo] = []
            while true {
                switch sqlite3_step(sqlite) {
                case SQLITE_ROW:
                    todos.append(
                        Todo(
                            id: text(0), title: text(1), description: text(2),
                            due: sqlite3_column_type(sqlite, 3) == SQLITE_NULL ? nil : text(3),
                            completed: sqlite3_column_int64(sqlite, 4) != 0, owner: owner.subject))
                case SQLITE_DONE:
                    return todos
                case let code:
                    throw DatabaseError(
                        resultCode: ResultCode(rawValue: code),
                        message: db.sqliteConnection.map { String(cString: sqlite3_errmsg($0)) }, sql: statement.sql)
                }
            }
        }
    }

    func find(id: String, owner: TodoOwner) async throws -> Todo? {
        try await seedIfFirstSeen(owner)
        return try await database.read { db in try TodoRecord.owned(id: id, by: owner).fetchOne(db)?.todo }
    }

    func create(_ todo: NewTodo, owner: TodoOwner) async throws -> Todo {
        try await seedIfFirstSeen(owner)
        let record = TodoRecord(new: todo, owner: owner, at: clock.now)
        try await database.write { db in try record.insert(db) }
        return record.todo
    }

    func update(id: String, owner: TodoOwner, changes: TodoChanges) async throws -> Todo? {
        try await seedIfFirstSeen(owner)
        let now = clock.now
        return try await database.write { db in
            guard var record = try TodoRecord.owned(id: id, by: owner).fetchOne(db) else { return nil }
            if let title = changes.title { record.title = title }
            if let description = changes.description { record.description = description }
            if let due = changes.due { record.due = due }
            if let completed = changes.completed { record.completed = completed }
            record.updatedAt = now
            try record.update(db)
            return record.todo
        }
    }

    func delete(id: String, owner: TodoOwner) async throws -> Bool {
        try await seedIfFirstSeen(owner)
        return try await database.write { db in try TodoRecord.owned(id: id, by: owner).deleteAll(db) > 0 }
    }

    /// Records the owner and gives them the sample todos, in one transaction, the first time they are seen.
    ///
    /// An owner from before owners had an issuer whose issuer migration v2 could not tell (``TodoDatabase``: its issuer
    /// is empty) is taken by the first issuer that presents the subject: their todos become this owner's, and no
    /// samples are added.
    private func seedIfFirstSeen(_ owner: TodoOwner) async throws {
        if seededOwners.withLock({ $0.contains(owner) }) { return }
        let now = clock.now
        try await database.write { db in
            try db.execute(
                sql: "INSERT OR IGNORE INTO owner (issuer, sub, firstSeenAt) VALUES (?, ?, ?)",
                arguments: [owner.issuer, owner.subject, now])
            guard db.changesCount > 0 else { return }
            try db.execute(sql: "DELETE FROM owner WHERE issuer = '' AND sub = ?", arguments: [owner.subject])
            if db.changesCount > 0, !owner.issuer.isEmpty {
                try db.execute(
                    sql: "UPDATE todo SET ownerIssuer = ? WHERE ownerIssuer = '' AND owner = ?",
                    arguments: [owner.issuer, owner.subject])
                return
            }
            for sample in SampleTodos.make(now: now) {
                try TodoRecord(new: sample, owner: owner, at: now).insert(db)
            }
        }
        seededOwners.withLock { owners in
            if owners.count >= 100_000 { owners.removeAll() }
            owners.insert(owner)
        }
    }
}

/// A row of the `todo` table.
struct TodoRecord: Codable, FetchableRecord, PersistableRecord {
    static let databaseTableName = "todo"
    var id: String
    /// The issuer ``owner`` is a subject of (``TodoOwner``).
    var ownerIssuer: String
    /// The subject: what the API shows as the todo's `owner`.
    var owner: String
    var title: String
    var description: String
    var due: String?
    var completed: Bool
    var createdAt: Date
    var updatedAt: Date

    init(new: NewTodo, owner: TodoOwner, at date: Date) {
        self.id = UUID().uuidString.lowercased()
        self.ownerIssuer = owner.issuer
        self.owner = owner.subject
        self.title = new.title
        self.description = new.description
        self.due = new.due
        self.completed = new.completed
        self.createdAt = date
        self.updatedAt = date
    }

    var todo: Todo {
        Todo(id: id, title: title, description: description, due: due, completed: completed, owner: owner)
    }

    static func owned(id: String, by owner: TodoOwner) -> QueryInterfaceRequest<TodoRecord> {
        filter(
            Column("id") == id.lowercased() && Column("ownerIssuer") == owner.issuer
                && Column("owner") == owner.subject)
    }
}
