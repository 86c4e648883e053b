import JSON
import JWTAuth

/// The outcome of a tool call, as MCP's `CallToolResult`: text (the JSON of the structured content, for clients that
/// only read text), the structured content itself, or an error message the model can read and act on.
struct ToolResult: Sendable, Equatable {
    /// The structured content, and its JSON text, written once: it is both the text content and the structured one.
    let structured: JSONValue?
    private let textBytes: [UInt8]
    let isError: Bool
    /// The user's sign-in has ended (revoked, or refused by the provider): the MCP layer answers with a 401 so that the
    /// client signs the user in again, instead of a result the model would read.
    var signInRequired = false

    var text: String { String(decoding: textBytes, as: UTF8.self) }

    /// Two results are the same when they say the same: equal structured content, however its text is spelled
    /// (members in another order, other whitespace), or else the same message.
    static func == (lhs: ToolResult, rhs: ToolResult) -> Bool {
        lhs.isError == rhs.isError && lhs.signInRequired == rhs.signInRequired && lhs.structured == rhs.structured
            && (lhs.structured != nil || lhs.textBytes == rhs.textBytes)
    }

    static func success(_ structured: JSONValue) -> ToolResult {
        ToolResult(structured: structured, textBytes: structured.serialized(), isError: false)
    }

    /// A result whose JSON text is already at hand: `text` must be JSON text meaning exactly `structured`.
    static func success(_ structured: JSONValue, text: [UInt8]) -> ToolResult {
        ToolResult(structured: structured, textBytes: text, isError: false)
    }

    static func failure(_ message: String) -> ToolResult {
        ToolResult(structured: nil, textBytes: Array(message.utf8), isError: true)
    }

    /// The `CallToolResult` object as JSON text, members sorted as ``JSONValue`` writes them; `extra` members
    /// (`_meta`, `resultType` in 2026-07-28) are added.
    func encoded(extra: [(name: String, json: [UInt8])] = []) -> [UInt8] {
        var members: [(name: String, json: [UInt8])] = extra
        var content: [UInt8] = []
        content.reserveCapacity(textBytes.count + 48)
        content.append(contentsOf: #"[{"text":"#.utf8)
        textBytes.withUnsafeBufferPointer { JSONValue.writeString(utf8: $0, to: &content) }
        content.append(contentsOf: #","type":"text"}]"#.utf8)
        members.append(("content", content))
        members.append(("isError", Array((isError ? "true" : "false").utf8)))
        if structured != nil { members.append(("structuredContent", textBytes)) }
        var output: [UInt8] = []
        output.reserveCapacity(content.count + textBytes.count + 256)
        output.append(UInt8(ascii: "{"))
        for (index, member) in members.sorted(by: { $0.name < $1.name }).enumerated() {
            if index > 0 { output.append(UInt8(ascii: ",")) }
            JSONValue.writeString(member.name, to: &output)
            output.append(UInt8(ascii: ":"))
            output.append(contentsOf: member.json)
        }
        output.append(UInt8(ascii: "}"))
        return output
    }
}

/// A tool call the protocol refuses (unknown tool, bad arguments): a JSON-RPC `invalid params` error, not a tool
/// result, so that the client can tell a malformed call from a tool that ran and failed.
struct ToolError: Error, Equatable {
    let message: String
    init(_ message: String) { self.message = message }
}
