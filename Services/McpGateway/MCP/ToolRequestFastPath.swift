import Foundation
import JWTAuth
import MCP

/// Answers `tools/list` and `tools/call` without the SDK's `Server`, with a JSON response (which Streamable HTTP
/// allows for any POSTed request).
///
/// Why: the SDK's request handlers are type-erased by encoding every result to JSON and decoding it back into
/// `MCP.Value`, and that decoding builds and compiles a regular expression for every string in the result (to detect
/// data URLs). A list of three todos cost the gateway about 3 ms of CPU per call that way; answering here costs a few
/// tens of microseconds. Everything else (initialize, notifications, ping, the GET stream, DELETE, sessions) still
/// goes through the SDK. The tool logic is the same ``TodoTools`` either way.
struct ToolRequestFastPath: Sendable {
    let tools: TodoTools

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
        let params = message["params"]?.objectValue ?? [:]
        return Call(id: id, method: method, params: params)
    }

    /// The JSON-RPC response to `call`, encoded.
    func answer(_ call: Call, caller: ToolCaller) async -> Data {
        do {
            if call.method == ListTools.name {
                return try Self.encode(id: call.id, result: ListTools.Result(tools: ToolDefinitions.all))
            }
            guard let name = call.params["name"]?.stringValue else {
                throw MCPError.invalidParams("tools/call needs the tool's name")
            }
            guard let arguments = call.params["arguments"].map({ $0 == .null ? [:] : $0.objectValue }) ?? [:] else {
                throw MCPError.invalidParams("'arguments' must be an object")
            }
            let result = try await tools.call(name, arguments: arguments.mapValues(MCP.Value.init), caller: caller)
            return try Self.encode(id: call.id, result: result)
        } catch let error as MCPError {
            return Self.error(id: call.id, code: error.code, message: error.errorDescription ?? "\(error)")
        } catch {
            return Self.error(id: call.id, code: -32603, message: "Internal error")
        }
    }

    private struct Envelope<Result: Encodable>: Encodable {
        let jsonrpc = "2.0"
        let id: JSONValue
        let result: Result
    }

    private static func encode(id: JSONValue, result: some Encodable) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        return try encoder.encode(Envelope(id: id, result: result))
    }

    private static func error(id: JSONValue, code: Int, message: String) -> Data {
        let body: JSONValue = [
            "jsonrpc": "2.0", "id": id, "error": ["code": .integer(Int64(code)), "message": .string(message)],
        ]
        return (try? JSONEncoder().encode(body)) ?? Data()
    }
}
