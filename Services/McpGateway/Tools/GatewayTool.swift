import JSON
import JWTAuth

/// One tool of the gateway: its name, the scopes a caller needs, its definition as `tools/list` shows it, and the call.
///
/// Tools know nothing of MCP's transports or of the gateway's storage: a call gets its arguments and a
/// ``ToolCaller`` (who is calling and what they may do) and returns a ``ToolResult``. Most are made from the APIs'
/// OpenAPI documents (``OpenAPITool``); the gateway's own are written by hand in `Tools/Catalog/`. ``ToolBox`` lists
/// them.
protocol GatewayTool: Sendable {
    /// The name clients call the tool by.
    var name: String { get }
    /// The OAuth scopes a caller needs (``ScopeRequirement/none``: any signed-in caller).
    var scopes: ScopeRequirement { get }
    /// The `Tool` object of `tools/list`: name, title, description, input and output schemas, annotations.
    var definition: JSONValue { get }
    /// Runs the tool. Malformed arguments throw ``ToolError``; failures the user can act on (sign in again, the API
    /// is down, no such todo) are results with `isError`.
    func call(_ arguments: ToolArguments, caller: ToolCaller) async throws(ToolError) -> ToolResult
}

extension GatewayTool {
    /// A tool definition with the members every tool has; `readOnly` tools are also idempotent and not destructive.
    static func toolDefinition(
        name: String, title: String, description: String, input: JSONValue, output: JSONValue,
        readOnly: Bool, destructive: Bool = false, idempotent: Bool = true
    ) -> JSONValue {
        [
            "name": .string(name), "title": .string(title), "description": .string(description),
            "inputSchema": input, "outputSchema": output,
            "annotations": [
                "readOnlyHint": .bool(readOnly), "destructiveHint": .bool(destructive),
                "idempotentHint": .bool(idempotent), "openWorldHint": false,
            ],
        ]
    }
}
