import JSON
import JWTAuth

/// Writes JSON-RPC responses. Results that never change (the tool list, discovery) are encoded once and spliced in
/// with each request's id.
enum JSONRPCResponse {
    /// `{"id":…,"jsonrpc":"2.0","result":…}`.
    static func result(id: JSONRPCID, _ result: JSONValue) -> [UInt8] {
        JSONValue.object(["jsonrpc": "2.0", "id": id.json, "result": result]).serialized()
    }

    /// A result already encoded as JSON text.
    static func result(id: JSONRPCID, encoded result: [UInt8]) -> [UInt8] {
        var output: [UInt8] = []
        output.reserveCapacity(result.count + 64)
        output.append(contentsOf: #"{"id":"#.utf8)
        id.json.write(to: &output)
        output.append(contentsOf: #","jsonrpc":"2.0","result":"#.utf8)
        output.append(contentsOf: result)
        output.append(UInt8(ascii: "}"))
        return output
    }

    static func error(_ error: JSONRPCError) -> [UInt8] {
        error.response.serialized()
    }
}

/// What answering a request produced: a result object, or an error.
enum JSONRPCOutcome: Sendable {
    case result(JSONValue)
    /// A result already encoded, for the answers that never change.
    case encoded([UInt8])
    case error(JSONRPCError)

    /// The response to the request `id`.
    func response(id: JSONRPCID) -> [UInt8] {
        switch self {
        case .result(let value): JSONRPCResponse.result(id: id, value)
        case .encoded(let bytes): JSONRPCResponse.result(id: id, encoded: bytes)
        case .error(let error): JSONRPCResponse.error(error.with(id: id))
        }
    }
}
