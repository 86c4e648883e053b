import JWTAuth

/// The outcome of a tool call, as MCP's `CallToolResult`: text (the JSON of the structured content, for clients that
/// only read text), the structured content itself, or an error message the model can read and act on.
struct ToolResult: Sendable, Equatable {
    let text: String
    let structured: JSONValue?
    let isError: Bool

    static func success(_ structured: JSONValue) -> ToolResult {
        ToolResult(
            text: String(decoding: structured.serialized(), as: UTF8.self), structured: structured, isError: false)
    }

    static func failure(_ message: String) -> ToolResult {
        ToolResult(text: message, structured: nil, isError: true)
    }

    /// The members of the `CallToolResult` object.
    var members: [String: JSONValue] {
        var result: [String: JSONValue] = [
            "content": [["type": "text", "text": .string(text)]], "isError": .bool(isError),
        ]
        if let structured { result["structuredContent"] = structured }
        return result
    }
}

/// A tool call the protocol refuses (unknown tool, bad arguments): a JSON-RPC `invalid params` error, not a tool
/// result, so that the client can tell a malformed call from a tool that ran and failed.
struct ToolError: Error, Equatable {
    let message: String
    init(_ message: String) { self.message = message }
}
