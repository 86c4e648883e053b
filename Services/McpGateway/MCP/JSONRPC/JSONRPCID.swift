import JSON
import JWTAuth

/// The `id` of a JSON-RPC request, as MCP allows it: a string or an integer, never `null`. The gateway also bounds
/// its size (``maximumBytes``): an id is echoed in the response, and a client should not make the gateway hold or
/// write back megabytes of it.
enum JSONRPCID: Sendable, Hashable {
    case string(String)
    case integer(Int64)

    /// The longest string id accepted, in UTF-8 bytes.
    static let maximumBytes = 128

    /// The id in `value`; `nil` when `value` is not a string of at most ``maximumBytes`` bytes or an integer.
    init?(_ value: JSONValue) {
        switch value {
        case .string(let text) where text.utf8.count <= Self.maximumBytes: self = .string(text)
        case .integer(let number): self = .integer(number)
        default: return nil
        }
    }

    var json: JSONValue {
        switch self {
        case .string(let text): .string(text)
        case .integer(let number): .integer(number)
        }
    }
}
