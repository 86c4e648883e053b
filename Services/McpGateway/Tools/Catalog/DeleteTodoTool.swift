import JSON
import JWTAuth

/// `delete-todo`: deletes one of the user's todos.
struct DeleteTodoTool: GatewayTool {
    let api: any TodosAPI
    let name = "delete-todo"
    let requiredScope: String? = "write:todos"
    let definition = Self.toolDefinition(
        name: "delete-todo", title: "Delete a todo",
        description: "Delete one of the signed-in user's todos. Needs the write:todos scope.",
        input: [
            "type": "object",
            "properties": ["id": ["type": "string", "description": "The todo's id, from list-todos"]],
            "required": ["id"],
            "additionalProperties": false,
        ],
        output: [
            "type": "object", "properties": ["deleted": ["type": "boolean"], "id": ["type": "string"]],
            "required": ["deleted", "id"],
        ],
        readOnly: false, destructive: true)

    func call(_ arguments: ToolArguments, caller: ToolCaller) async throws(ToolError) -> ToolResult {
        try arguments.expectOnly(["id"])
        let id = try arguments.todoID()
        return ToolResult(await api.deleteTodo(id: id, for: caller)) { ["deleted": true, "id": .string(id)] }
    }
}
