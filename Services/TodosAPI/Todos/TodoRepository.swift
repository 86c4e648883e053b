/// Where todos are kept. Every operation is scoped to an owner: a todo of another owner is never found.
protocol TodoRepository: Sendable {
    /// The owner's todos, oldest first. A first-time owner gets sample todos.
    func list(owner: TodoOwner) async throws -> [Todo]
    /// The owner's todo with this id.
    func find(id: String, owner: TodoOwner) async throws -> Todo?
    /// Creates a todo for the owner.
    func create(_ todo: NewTodo, owner: TodoOwner) async throws -> Todo
    /// Applies `changes` to the owner's todo; `nil` when the owner has no such todo.
    func update(id: String, owner: TodoOwner, changes: TodoChanges) async throws -> Todo?
    /// Deletes the owner's todo; `false` when the owner has no such todo.
    func delete(id: String, owner: TodoOwner) async throws -> Bool
}
