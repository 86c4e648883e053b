import Foundation
import GRDB
import JSON
import Testing

@testable import TodosAPI

/// `GET /api/todos` is written straight from SQLite's rows (``SQLiteTodoRepository/writeList(owner:completed:to:)``);
/// it must be byte for byte what the todos themselves write (``Todo/write(to:)``, the protocol's default), whatever the
/// text holds.
@Suite("TodosAPI list written from the rows")
struct TodoListWritingTests {
    /// The default ``TodoRepository/writeList(owner:completed:to:)``: from ``TodoRepository/list(owner:)``.
    struct ThroughTodos: TodoRepository {
        let base: SQLiteTodoRepository
        func list(owner: TodoOwner) async throws -> [Todo] { try await base.list(owner: owner) }
        func find(id: String, owner: TodoOwner) async throws -> Todo? { try await base.find(id: id, owner: owner) }
        func create(_ todo: NewTodo, owner: TodoOwner) async throws -> Todo {
            try await base.create(todo, owner: owner)
        }
        func update(id: String, owner: TodoOwner, changes: TodoChanges) async throws -> Todo? {
            try await base.update(id: id, owner: owner, changes: changes)
        }
        func delete(id: String, owner: TodoOwner) async throws -> Bool { try await base.delete(id: id, owner: owner) }
    }

    func written(_ repository: some TodoRepository, _ owner: TodoOwner, completed: Bool?) async throws -> [UInt8] {
        var output: [UInt8] = []
        try await repository.writeList(owner: owner, completed: completed, to: &output)
        return output
    }

    @Test func rowsAreWrittenAsTheTodosWriteThemselves() async throws {
        let repository = SQLiteTodoRepository(database: try TodoDatabase.inMemory())
        let owner = TodoOwner(issuer: "https://tenant.example.com/", subject: "auth0|\"quoted\"\nsubject")
        let other = TodoOwner(issuer: "https://tenant.example.com/", subject: "auth0|other")
        _ = try await repository.create(NewTodo(title: "other's", description: ""), owner: other)
        let made = [
            NewTodo(
                title: "quotes \" and \\ backslashes", description: "line\nbreak\ttab\u{1}control", due: "2026-12-31"),
            NewTodo(title: "émoji 🧪 and ünïcode", description: "", due: nil, completed: true),
            NewTodo(title: "", description: "\u{7F} and \u{2028}", due: "2027-01-01", completed: true),
        ]
        for todo in made { _ = try await repository.create(todo, owner: owner) }
        let todos = try await repository.list(owner: owner)
        #expect(todos.count == 3 + 3)  // the three samples a new owner gets, and the three made here
        for completed in [nil, true, false] as [Bool?] {
            let direct = try await written(repository, owner, completed: completed)
            let throughTodos = try await written(ThroughTodos(base: repository), owner, completed: completed)
            #expect(direct == throughTodos, "completed: \(String(describing: completed))")
            // And it is the JSON of those todos, in order.
            let parsed = try JSONValue(parsing: Array("[".utf8) + direct + Array("]".utf8))
            let expected = todos.filter { completed == nil || $0.completed == completed }
            #expect(parsed == .array(expected.map(\.json)))
        }
        #expect(try await written(repository, other, completed: nil).count > 0)
        let stranger = TodoOwner(issuer: "https://elsewhere.example.com/", subject: "auth0|other")
        // A new owner gets the samples, written like any other todos.
        let strangers = try await written(repository, stranger, completed: nil)
        #expect(try JSONValue(parsing: Array("[".utf8) + strangers + Array("]".utf8)).arrayValue?.count == 3)
    }
}
