import JSON
import JWTAuth

/// A JSON-RPC error object (`code`, `message`, `data`), and the id of the request it answers when that is known.
///
/// Codes are those of JSON-RPC 2.0 and of MCP. MCP reserves `-32020`…`-32099` for its own codes and asks new
/// implementations to stay out of `-32000`…`-32019`; the gateway's own conditions (overload) use codes outside the
/// JSON-RPC range, as the specification recommends.
struct JSONRPCError: Error, Sendable, Equatable {
    var code: Int
    var message: String
    var data: JSONValue?
    /// The id of the request this error answers; `nil` when it could not be read (written as `"id": null`).
    var id: JSONRPCID?

    static let parseErrorCode = -32700
    static let invalidRequestCode = -32600
    static let methodNotFoundCode = -32601
    static let invalidParamsCode = -32602
    static let internalErrorCode = -32603
    /// MCP 2026-07-28: HTTP headers that do not match the body, or required headers missing.
    static let headerMismatchCode = -32020
    /// MCP 2026-07-28: the request's protocol version is not one the server speaks.
    static let unsupportedProtocolVersionCode = -32022
    /// The gateway's own: too many requests of this session or user are being answered; retry later.
    static let busyCode = -31000
    /// The gateway's own: the access token lacks the scope the tool needs (sent with a 403 step-up challenge).
    static let insufficientScopeCode = -31003
    /// The gateway's own: the user's sign-in has ended (sent with a 401 `invalid_token` challenge, so that the client
    /// authorizes again).
    static let signInRequiredCode = -31001

    static func parseError(_ reason: String) -> Self {
        Self(code: parseErrorCode, message: "Parse error: \(reason)")
    }

    static func invalidRequest(_ message: String, id: JSONRPCID? = nil) -> Self {
        Self(code: invalidRequestCode, message: message, id: id)
    }

    static func methodNotFound(_ method: String, id: JSONRPCID?) -> Self {
        Self(code: methodNotFoundCode, message: "Method not found: \(method)", id: id)
    }

    static func invalidParams(_ message: String, id: JSONRPCID?) -> Self {
        Self(code: invalidParamsCode, message: message, id: id)
    }

    static func internalError(id: JSONRPCID?) -> Self {
        Self(code: internalErrorCode, message: "Internal error", id: id)
    }

    static func headerMismatch(_ message: String, id: JSONRPCID?) -> Self {
        Self(code: headerMismatchCode, message: "Header mismatch: \(message)", id: id)
    }

    /// The error both eras understand: the version asked for, and the versions the gateway speaks.
    static func unsupportedProtocolVersion(_ requested: String, id: JSONRPCID?) -> Self {
        Self(
            code: unsupportedProtocolVersionCode,
            message:
                "Unsupported protocol version \(requested); this server speaks \(ProtocolRevision.supportedNames.joined(separator: ", "))",
            data: [
                "supported": .array(ProtocolRevision.supportedNames.map(JSONValue.string)),
                "requested": .string(requested),
            ], id: id)
    }

    static func busy(_ message: String, id: JSONRPCID?) -> Self {
        Self(code: busyCode, message: message, id: id)
    }

    static func signInRequired(_ message: String, id: JSONRPCID?) -> Self {
        Self(code: signInRequiredCode, message: message, data: ["error": "invalid_token"], id: id)
    }

    static func insufficientScope(_ message: String, scope: String, id: JSONRPCID?) -> Self {
        Self(
            code: insufficientScopeCode, message: message,
            data: ["error": "insufficient_scope", "scope": .string(scope)], id: id)
    }

    func with(id: JSONRPCID?) -> Self {
        var copy = self
        copy.id = id
        return copy
    }

    /// The error response: `{"jsonrpc":"2.0","id":…,"error":{…}}`.
    var response: JSONValue {
        var error: [String: JSONValue] = ["code": .integer(Int64(code)), "message": .string(message)]
        if let data { error["data"] = data }
        return ["jsonrpc": "2.0", "id": id?.json ?? .null, "error": .object(error)]
    }
}
