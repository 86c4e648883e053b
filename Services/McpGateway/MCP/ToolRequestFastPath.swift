import Foundation
import JWTAuth
import MCP

/// Answers `tools/list` and `tools/call` without the SDK's `Server`, with a JSON response (which Streamable HTTP
/// allows for any POSTed request).
///
/// Why: the SDK's request handlers are type-erased by encoding every result to JSON and decoding it back into
/// `MCP.Value`, and that decoding builds and compiles a regular expression for every string in the result (to detect
/// data URLs). A list of three todos cost the gateway about 3 ms of CPU per call that way; answered here, with the
/// request parsed once and the response written directly, it costs a few tens of microseconds. Everything else
/// (initialize, notifications, ping, the GET stream, DELETE, sessions) still goes through the SDK.
struct ToolRequestFastPath: Sendable {
    let tools: TodoTools
    /// The `tools/list` result never changes: encoded once, with the SDK's own `Tool` type.
    private let toolList: JSONValue

    init(tools: TodoTools) {
        self.tools = tools
        let encoded = (try? JSONEncoder().encode(ListTools.Result(tools: ToolDefinitions.all))) ?? Data("{}".utf8)
        self.toolList = (try? JSONValue(parsing: encoded)) ?? ["tools": []]
    }

    /// A JSON-RPC request this path answers.
    struct Call: Sendable {
        let id: JSONValue
        let method: String
        let params: [String: JSONValue]
    }

    /// The request in `message`, when it is a `tools/list` or `tools/call` request (with an id) this path answers.
    static func parse(_ message: [String: JSONValue]) -> Call? {
        guard message["jsonrpc"] == "2.0", let method = message["method"]?.stringValue,
            method == CallTool.name || method == ListTools.name, let id = message["id"]
        else { return nil }
        switch id {
        case .string, .integer: break
        default: return nil
        }
        return Call(id: id, method: method, params: message["params"]?.objectValue ?? [:])
    }

    /// The JSON-RPC response to `call`, encoded.
    func answer(_ call: Call, caller: MCPCaller) async -> [UInt8] {
        do {
            if call.method == ListTools.name { return Self.response(id: call.id, result: toolList) }
            guard let name = call.params["name"]?.stringValue else {
                throw ToolError("tools/call needs the tool's name")
            }
            let arguments: [String: JSONValue]
            switch call.params["arguments"] {
            case nil, .null?: arguments = [:]
            case .object(let members)?: arguments = members
            default: throw ToolError("'arguments' must be an object")
            }
            let result = try await tools.call(name, arguments: arguments, caller: caller)
            return Self.response(id: call.id, result: result.json)
        } catch let error as ToolError {
            return Self.response(
                id: call.id, error: ["code": .integer(Int64(ToolError.code)), "message": .string(error.message)])
        } catch {
            return Self.response(id: call.id, error: ["code": -32603, "message": "Internal error"])
        }
    }

    private static func response(id: JSONValue, result: JSONValue? = nil, error: JSONValue? = nil) -> [UInt8] {
        var envelope: [String: JSONValue] = ["jsonrpc": "2.0", "id": id]
        if let result { envelope["result"] = result }
        if let error { envelope["error"] = error }
        return JSONValue.object(envelope).serialized()
    }
}
