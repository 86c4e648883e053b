import JSON
import JWTAuth

/// `update-todo`: changes a todo's title, description, due date or completion.
struct UpdateTodoTool: GatewayTool {
    let api: any TodosAPI
    let name = "update-todo"
    let requiredScope: String? = "write:todos"
    let definition = Self.toolDefinition(
        name: "update-todo", title: "Update a todo",
        description: "Change a todo's title, description, due date or completion. Needs the write:todos scope.",
        input: [
            "type": "object",
            "properties": [
                "id": ["type": "string", "description": "The todo's id, from list-todos"],
                "title": ["type": "string", "minLength": 1, "maxLength": 200],
                "description": ["type": "string", "maxLength": 2000],
                "due": ["type": ["string", "null"], "description": "Due date, YYYY-MM-DD, or null to clear it"],
                "completed": ["type": "boolean"],
            ],
            "required": ["id"],
            "additionalProperties": false,
        ],
        output: TodoSchema.single, readOnly: false, destructive: true)

    func call(_ arguments: ToolArguments, caller: ToolCaller) async throws(ToolError) -> ToolResult {
        try arguments.expectOnly(["id", "title", "description", "due", "completed"])
        let id = try arguments.todoID()
        var changes = arguments.values
        changes.removeValue(forKey: "id")
        guard !changes.isEmpty else { throw ToolError("Nothing to change: pass title, description, due or completed") }
        return ToolResult(await api.updateTodo(id: id, changes: changes, for: caller)) { ["todo": $0] }
    }
}
