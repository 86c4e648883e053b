import MCP

/// The tools' descriptions, input and output schemas and annotations, as `tools/list` returns them.
enum ToolDefinitions {
    static let todoSchema: Value = [
        "type": "object",
        "properties": [
            "id": ["type": "string", "description": "The todo's id (a UUID)"],
            "title": ["type": "string"],
            "description": ["type": "string"],
            "due": ["type": ["string", "null"], "description": "Due date, YYYY-MM-DD, or null"],
            "completed": ["type": "boolean"],
            "owner": ["type": "string", "description": "The user the todo belongs to"],
        ],
        "required": ["id", "title", "description", "due", "completed", "owner"],
    ]

    static let all: [Tool] = [
        Tool(
            name: ToolCatalog.whoami, title: "Who am I",
            description:
                "Show who is signed in (identity claims), the OAuth client acting for them (none behind Cloudflare "
                + "Access) and which scopes this connection was granted.",
            inputSchema: ["type": "object", "properties": [:], "additionalProperties": false],
            annotations: .init(readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false),
            outputSchema: [
                "type": "object",
                "properties": [
                    "sub": ["type": "string"], "name": ["type": ["string", "null"]],
                    "email": ["type": ["string", "null"]], "client_id": ["type": ["string", "null"]],
                    "scopes": ["type": "array", "items": ["type": "string"]],
                ],
                "required": ["sub", "client_id", "scopes"],
            ]),
        Tool(
            name: ToolCatalog.listTodos, title: "List todos",
            description: "List the signed-in user's todos from the Todos API. Needs the read:todos scope.",
            inputSchema: [
                "type": "object",
                "properties": [
                    "completed": ["type": "boolean", "description": "Only completed (true) or open (false) todos"]
                ],
                "additionalProperties": false,
            ],
            annotations: .init(readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false),
            outputSchema: [
                "type": "object", "properties": ["todos": ["type": "array", "items": todoSchema]],
                "required": ["todos"],
            ]),
        Tool(
            name: ToolCatalog.listBilling, title: "Show billing details",
            description: "Show the signed-in user's billing details. Needs the read:billing scope.",
            inputSchema: ["type": "object", "properties": [:], "additionalProperties": false],
            annotations: .init(readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false),
            outputSchema: [
                "type": "object",
                "properties": [
                    "billing": [
                        "type": "object",
                        "properties": [
                            "method": ["type": "string"], "last4": ["type": "string"],
                            "expiration": ["type": "string"],
                        ],
                        "required": ["method", "last4", "expiration"],
                    ]
                ],
                "required": ["billing"],
            ]),
        Tool(
            name: ToolCatalog.addTodo, title: "Add a todo",
            description: "Create a todo for the signed-in user. Needs the write:todos scope.",
            inputSchema: [
                "type": "object",
                "properties": [
                    "title": ["type": "string", "minLength": 1, "maxLength": 200, "description": "One line"],
                    "description": ["type": "string", "maxLength": 2000],
                    "due": ["type": "string", "description": "Due date, YYYY-MM-DD"],
                ],
                "required": ["title"],
                "additionalProperties": false,
            ],
            annotations: .init(
                readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: false),
            outputSchema: ["type": "object", "properties": ["todo": todoSchema], "required": ["todo"]]),
        Tool(
            name: ToolCatalog.updateTodo, title: "Update a todo",
            description: "Change a todo's title, description, due date or completion. Needs the write:todos scope.",
            inputSchema: [
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
            annotations: .init(readOnlyHint: false, destructiveHint: true, idempotentHint: true, openWorldHint: false),
            outputSchema: ["type": "object", "properties": ["todo": todoSchema], "required": ["todo"]]),
        Tool(
            name: ToolCatalog.deleteTodo, title: "Delete a todo",
            description: "Delete one of the signed-in user's todos. Needs the write:todos scope.",
            inputSchema: [
                "type": "object",
                "properties": ["id": ["type": "string", "description": "The todo's id, from list-todos"]],
                "required": ["id"],
                "additionalProperties": false,
            ],
            annotations: .init(readOnlyHint: false, destructiveHint: true, idempotentHint: true, openWorldHint: false),
            outputSchema: [
                "type": "object", "properties": ["deleted": ["type": "boolean"], "id": ["type": "string"]],
                "required": ["deleted", "id"],
            ]),
    ]
}
