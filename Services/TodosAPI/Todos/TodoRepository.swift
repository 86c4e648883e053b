/// Where todos are kept. Every operation is scoped to an owner: a todo of another owner is never found.
protocol TodoRepository: Sendable {
    /// The owner's todos, oldest first. A first-time owner gets sample todos.
    func list(owner: TodoOwner) async throws -> [Todo]
    /// Appends the owner's todos (only the completed or the open ones when `completed` is set), oldest first, as the
    /// members of a JSON array, comma-separated: `GET /api/todos`'s body. A first-time owner gets sample todos.
    func writeList(owner: TodoOwner, completed: Bool?, to output: inout [UInt8]) async throws
    /// The owner's todo with this id.
    func find(id: String, owner: TodoOwner) async throws -> Todo?
    /// Creates a todo for the owner.
    func create(_ todo: NewTodo, owner: TodoOwner) async throws -> Todo
    /// Applies `changes` to the owner's todo; `nil` when the owner has no such todo.
    func update(id: String, owner: TodoOwner, changes: TodoChanges) async throws -> Todo?
    /// Deletes the owner's todo; `false` when the owner has no such todo.
    func delete(id: String, owner: TodoOwner) async throws -> Bool
}

extension TodoRepository {
    /// ``list(owner:)``'s todos, each written by ``Todo/write(to:)``.
    func writeList(owner: TodoOwner, completed: Bool?, to output: inout [UInt8]) async throws {
        var first = true
        for todo in try await list(owner: owner) where completed.map({ todo.completed == $0 }) ?? true {
            if !first { output.append(UInt8(ascii: ",")) }
            first = false
            todo.write(to: &output)
        }
    }
}
