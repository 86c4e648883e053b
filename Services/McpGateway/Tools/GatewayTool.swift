import JSON
import JWTAuth

/// One tool of the gateway: its name, the scope a caller needs, its definition as `tools/list` shows it, and the call.
///
/// Tools know nothing of MCP's transports or of the gateway's storage: a call gets its arguments and a
/// ``ToolCaller`` (who is calling and what they may do) and returns a ``ToolResult``. Each tool is one file in
/// `Tools/Catalog/`; ``ToolBox`` lists them.
protocol GatewayTool: Sendable {
    /// The name clients call the tool by (named as in Cloudflare's Auth0 demo, so prompts carry over).
    var name: String { get }
    /// The OAuth scope a caller needs, or `nil` when any signed-in user may call the tool.
    var requiredScope: String? { get }
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
