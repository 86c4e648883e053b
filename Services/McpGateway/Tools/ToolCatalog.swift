/// The gateway's tools, named as in the Cloudflare Auth0 demo so prompts carry over, and the scope each needs.
enum ToolCatalog {
    static let whoami = "whoami"
    static let listTodos = "list-todos"
    static let listBilling = "list-billing"
    static let addTodo = "add-todo"
    static let updateTodo = "update-todo"
    static let deleteTodo = "delete-todo"

    static let all: Set<String> = [whoami, listTodos, listBilling, addTodo, updateTodo, deleteTodo]

    /// The scope a tool needs; `nil` for `whoami`, which any signed-in user may call.
    static func requiredScope(_ tool: String) -> String? {
        switch tool {
        case listTodos: "read:todos"
        case listBilling: "read:billing"
        case addTodo, updateTodo, deleteTodo: "write:todos"
        default: nil
        }
    }
}
