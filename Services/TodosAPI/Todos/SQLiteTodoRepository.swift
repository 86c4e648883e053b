import Foundation
import GRDB
import GRDBSQLite
import JSON
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
        var todos: [Todo] = []
        try forEachTodo(of: owner) { row in
            todos.append(
                Todo(
                    id: row.text(.id), title: row.text(.title), description: row.text(.description),
                    due: row.isNull(.due) ? nil : row.text(.due), completed: row.completed, owner: owner.subject))
        }
        return todos
    }

    /// `GET /api/todos`, the API's most frequent query, written from the rows' bytes: no ``Todo`` and no string is
    /// made for a todo that is only turned into JSON.
    func writeList(owner: TodoOwner, completed: Bool?, to output: inout [UInt8]) async throws {
        try await seedIfFirstSeen(owner)
        var ownerJSON: [UInt8] = []
        JSONValue.writeString(owner.subject, to: &ownerJSON)
        var first = true
        try forEachTodo(of: owner) { row in
            if let completed, row.completed != completed { return }
            if !first { output.append(UInt8(ascii: ",")) }
            first = false
            Todo.writeJSON(completed: row.completed, to: &output) { field, output in
                switch field {
                case .owner: output.append(contentsOf: ownerJSON)
                case .due where row.isNull(.due): output.append(contentsOf: "null".utf8)
                default: JSONValue.writeString(utf8: row.bytes(field), to: &output)
                }
            }
        }
    }

    /// A row of ``forEachTodo(of:_:)``: valid only inside its closure.
    private struct Row {
        let statement: OpaquePointer

        private func column(_ field: Todo.TextField) -> Int32 {
            switch field {
            case .id: 0
            case .title: 1
            case .description: 2
            case .due: 3
            case .owner: preconditionFailure("the owner is the caller's, not a column that is read")
            }
        }

        func isNull(_ field: Todo.TextField) -> Bool { sqlite3_column_type(statement, column(field)) == SQLITE_NULL }

        /// The column's UTF-8 bytes, SQLite's own until the next step.
        func bytes(_ field: Todo.TextField) -> UnsafeBufferPointer<UInt8> {
            let column = column(field)
            guard let bytes = sqlite3_column_text(statement, column) else {
                return UnsafeBufferPointer(start: nil, count: 0)
            }
            return UnsafeBufferPointer(start: bytes, count: Int(sqlite3_column_bytes(statement, column)))
        }

        func text(_ field: Todo.TextField) -> String { String(decoding: bytes(field), as: UTF8.self) }

        var completed: Bool { sqlite3_column_int64(statement, 4) != 0 }
    }

    /// Calls `body` with each of the owner's todos, oldest first. Synchronous on purpose: an indexed read of a few rows
    /// takes microseconds, less than the two thread hops of an asynchronous read.
    ///
    /// One statement, compiled once and reused (`cachedStatement`); no transaction around it (a single SELECT reads one
    /// consistent snapshot by itself); its rows read by position through SQLite's C API. GRDB's cursors make a row
    /// object and an index of its column names for every query, which measured as much as SQLite's own work here. GRDB
    /// still prepares, caches and binds the statement, and the statement is reset before the connection is used again.
    private func forEachTodo(of owner: TodoOwner, _ body: (Row) throws -> Void) throws {
        try database.unsafeRead { db in
            let statement = try db.cachedStatement(
                sql: """
                    SELECT id, title, description, due, completed FROM todo WHERE ownerIssuer = ? AND owner = ?
                    ORDER BY rowid
                    """)
            try statement.setArguments([owner.issuer, owner.subject])
            let sqlite = statement.sqliteStatement
            defer { sqlite3_reset(sqlite) }
            while true {
                switch sqlite3_step(sqlite) {
                case SQLITE_ROW:
                    try body(Row(statement: sqlite))
                case SQLITE_DONE:
                    return
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
