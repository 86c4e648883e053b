import JSON
import JWTAuth

/// The JSON Schema of a todo as TodosAPI returns it, shared by the output schemas of the todo tools.
enum TodoSchema {
    static let todo: JSONValue = [
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

    /// `{"todo": <todo>}`, the output of the tools that create or change one.
    static let single: JSONValue = ["type": "object", "properties": ["todo": todo], "required": ["todo"]]

    /// An input schema that takes no arguments.
    static let noArguments: JSONValue = ["type": "object", "properties": [:], "additionalProperties": false]
}
