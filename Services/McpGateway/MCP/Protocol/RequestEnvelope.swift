import JSON
import JWTAuth
import ServiceSupport

/// The per-request metadata of MCP 2026-07-28 (`params._meta`): the protocol version and the client's capabilities,
/// both required, and the optional client identity and log level. A request without them is malformed (`-32602`).
///
/// The W3C trace context (`traceparent`, `tracestate`) travels in the same `_meta`, in every revision; it is read by
/// ``traceContext(of:)``.
struct RequestEnvelope: Sendable {
    static let protocolVersionKey = "io.modelcontextprotocol/protocolVersion"
    static let clientCapabilitiesKey = "io.modelcontextprotocol/clientCapabilities"
    static let clientInfoKey = "io.modelcontextprotocol/clientInfo"

    let protocolVersion: String
    let clientName: String?

    init(_ request: JSONRPCRequest) throws(JSONRPCError) {
        guard case .object(let meta)? = request.params["_meta"] else {
            throw .invalidParams(
                "params._meta must be an object with \(Self.protocolVersionKey) and \(Self.clientCapabilitiesKey)",
                id: request.id)
        }
        let missing = [Self.protocolVersionKey, Self.clientCapabilitiesKey].filter { meta[$0] == nil }
        guard missing.isEmpty else {
            throw .invalidParams(
                "params._meta is missing \(missing.joined(separator: " and ")), which every request carries since 2026-07-28",
                id: request.id)
        }
        guard case .string(let version)? = meta[Self.protocolVersionKey] else {
            throw .invalidParams("\(Self.protocolVersionKey) must be a string", id: request.id)
        }
        guard case .object? = meta[Self.clientCapabilitiesKey] else {
            throw .invalidParams("\(Self.clientCapabilitiesKey) must be an object", id: request.id)
        }
        self.protocolVersion = version
        self.clientName = meta[Self.clientInfoKey]?.objectValue?["name"]?.stringValue
    }

    /// Whether `params._meta` names a protocol version: how a 2026-07-28 request is told apart from a request of a
    /// session, when the client sent no `MCP-Protocol-Version` header.
    static func namesProtocolVersion(_ params: [String: JSONValue]) -> Bool {
        params["_meta"]?.objectValue?[protocolVersionKey] != nil
    }

    /// The trace context in `params._meta`, when it is well-formed.
    static func traceContext(of params: [String: JSONValue]) -> TraceContext? {
        guard case .object(let meta)? = params["_meta"], case .string(let parent)? = meta["traceparent"] else {
            return nil
        }
        return TraceContext(traceparent: parent, tracestate: meta["tracestate"]?.stringValue)
    }
}
