import JSON
import JWTAuth

/// `list-todos`: the user's todos, optionally only the completed or the open ones.
struct ListTodosTool: GatewayTool {
    let api: any TodosAPI
    let name = "list-todos"
    let requiredScope: String? = "read:todos"
    let definition = Self.toolDefinition(
        name: "list-todos", title: "List todos",
        description: "List the signed-in user's todos from the Todos API. Needs the read:todos scope.",
        input: [
            "type": "object",
            "properties": [
                "completed": ["type": "boolean", "description": "Only completed (true) or open (false) todos"]
            ],
            "additionalProperties": false,
        ],
        output: [
            "type": "object", "properties": ["todos": ["type": "array", "items": TodoSchema.todo]],
            "required": ["todos"],
        ],
        readOnly: true)

    func call(_ arguments: ToolArguments, caller: ToolCaller) async throws(ToolError) -> ToolResult {
        try arguments.expectOnly(["completed"])
        let completed = try arguments.bool("completed")
        return ToolResult(await api.listTodos(for: caller)) { todos in
            guard let completed else { return ["todos": .array(todos)] }
            return ["todos": .array(todos.filter { $0.objectValue?["completed"]?.boolValue == completed })]
        }
    }
}
