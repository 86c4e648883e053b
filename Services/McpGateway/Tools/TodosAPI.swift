import JSON

/// What the Todos tools ask of TodosAPI, each answer a typed outcome: ``TodosAPIClient`` over HTTP, or a test's own.
protocol TodosAPI: Sendable {
    /// The caller's todos (`GET /api/todos`), each an object with `id`, `title`, `completed`, ….
    func listTodos(for caller: ToolCaller) async -> Result<[JSONValue], TodosAPIFailure>
    /// The caller's billing details (`GET /api/billing`): the `billing` object.
    func billing(for caller: ToolCaller) async -> Result<JSONValue, TodosAPIFailure>
    /// Creates a todo (`POST /api/todos`); the created todo.
    func createTodo(_ fields: [String: JSONValue], for caller: ToolCaller) async -> Result<JSONValue, TodosAPIFailure>
    /// Changes a todo (`PATCH /api/todos/{id}`); the changed todo.
    func updateTodo(id: String, changes: [String: JSONValue], for caller: ToolCaller) async
        -> Result<JSONValue, TodosAPIFailure>
    /// Deletes a todo (`DELETE /api/todos/{id}`).
    func deleteTodo(id: String, for caller: ToolCaller) async -> Result<Void, TodosAPIFailure>
}

/// How a request proves who it is for. Never a token the MCP client presented: TodosAPI does not accept those.
enum TodosAPICredential: Sendable, Equatable {
    /// `Authorization: Bearer`: an access token of an issuer TodosAPI trusts (the provider, or the gateway).
    case bearer(String)
}

/// The scopes TodosAPI's endpoints require (docs/openapi.yaml): a credential carries the one a request needs.
enum TodosAPIScope {
    static let readTodos = "read:todos"
    static let writeTodos = "write:todos"
    static let readBilling = "read:billing"
}
