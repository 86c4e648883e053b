import JSON
import JWTAuth

/// A JSON-RPC request: it has an id and expects a response.
struct JSONRPCRequest: Sendable {
    let id: JSONRPCID
    let method: String
    let params: [String: JSONValue]
}

/// One message a client sent, classified by the JSON-RPC 2.0 rules with MCP's restrictions: `jsonrpc` must be
/// `"2.0"`; a request's id a string (at most ``JSONRPCID/maximumBytes`` bytes) or an integer; `params` an object.
enum JSONRPCMessage: Sendable {
    case request(JSONRPCRequest)
    case notification(method: String)
    /// A response to a request of the server's. The gateway sends none, so it has nothing to match one against.
    case response

    var method: String? {
        switch self {
        case .request(let request): request.method
        case .notification(let method): method
        case .response: nil
        }
    }

    /// Classifies `value`; a message that breaks the rules throws the error to answer with, carrying the id whenever
    /// it could be read.
    init(_ value: JSONValue) throws(JSONRPCError) {
        guard case .object(let message) = value else {
            throw .invalidRequest("A JSON-RPC message must be a JSON object")
        }
        let rawID = message["id"]
        let id = rawID.flatMap(JSONRPCID.init)
        guard message["jsonrpc"] == "2.0" else {
            throw .invalidRequest(#"The message must have "jsonrpc": "2.0""#, id: id)
        }
        if let rawID, id == nil {
            throw .invalidRequest(Self.invalidID(rawID))
        }
        guard let methodValue = message["method"] else {
            guard id != nil, message["result"] != nil || message["error"] != nil else {
                throw .invalidRequest("The message has no method: it is neither a request nor a notification", id: id)
            }
            self = .response
            return
        }
        guard case .string(let method) = methodValue, !method.isEmpty else {
            throw .invalidRequest("The method must be a non-empty string", id: id)
        }
        let params: [String: JSONValue]
        switch message["params"] {
        case nil: params = [:]
        case .object(let members)?: params = members
        default: throw .invalidParams("params must be an object", id: id)
        }
        if let id {
            self = .request(JSONRPCRequest(id: id, method: method, params: params))
        } else {
            self = .notification(method: method)
        }
    }

    private static func invalidID(_ value: JSONValue) -> String {
        switch value {
        case .string: "The id is longer than \(JSONRPCID.maximumBytes) bytes"
        case .null: "The id must not be null: use a string or an integer"
        default: "The id must be a string or an integer"
        }
    }
}
