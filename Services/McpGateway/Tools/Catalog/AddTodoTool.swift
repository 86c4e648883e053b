import JSON
import JWTAuth

/// `add-todo`: creates a todo. TodosAPI checks the content (lengths, date format) and its refusal reaches the model.
struct AddTodoTool: GatewayTool {
    let api: any TodosAPI
    let name = "add-todo"
    let requiredScope: String? = "write:todos"
    let definition = Self.toolDefinition(
        name: "add-todo", title: "Add a todo",
        description: "Create a todo for the signed-in user. Needs the write:todos scope.",
        input: [
            "type": "object",
            "properties": [
                "title": ["type": "string", "minLength": 1, "maxLength": 200, "description": "One line"],
                "description": ["type": "string", "maxLength": 2000],
                "due": ["type": "string", "description": "Due date, YYYY-MM-DD"],
            ],
            "required": ["title"],
            "additionalProperties": false,
        ],
        output: TodoSchema.single, readOnly: false, idempotent: false)

    func call(_ arguments: ToolArguments, caller: ToolCaller) async throws(ToolError) -> ToolResult {
        try arguments.expectOnly(["title", "description", "due"])
        guard try arguments.string("title") != nil else { throw ToolError("'title' is required") }
        _ = try arguments.string("description")
        _ = try arguments.string("due")
        return ToolResult(await api.createTodo(arguments.values, for: caller)) { ["todo": $0] }
    }
}
