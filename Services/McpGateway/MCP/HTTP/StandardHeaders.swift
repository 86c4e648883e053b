import Foundation
import HTTPTypes
import Hummingbird
import JSON
import JWTAuth

/// MCP 2026-07-28 mirrors parts of each request's body into headers, so that load balancers and gateways can route
/// without reading the body: `MCP-Protocol-Version` (the `_meta` version), `Mcp-Method` (the method) and, for
/// `tools/call`, `resources/read` and `prompts/get`, `Mcp-Name` (the tool or prompt name, or the resource URI).
///
/// A server that reads the body must refuse a request whose headers are missing, malformed, sent twice or different
/// from the body (`400`, `-32020`): otherwise a proxy and the server could act on different values.
enum StandardHeaders {
    /// The `params` member each method's `Mcp-Name` mirrors.
    static let nameSources = ["tools/call": "name", "resources/read": "uri", "prompts/get": "name"]

    static func validate(_ request: Request, message: JSONRPCRequest, protocolVersion: String) throws(JSONRPCError) {
        let version = try single(MCPHTTP.protocolVersion, of: request, id: message.id)
        guard version == protocolVersion else {
            throw .headerMismatch(
                "MCP-Protocol-Version is '\(version)' but params._meta says '\(protocolVersion)'", id: message.id)
        }
        let method = try single(MCPHTTP.method, of: request, id: message.id)
        guard method == message.method else {
            throw .headerMismatch(
                "Mcp-Method is '\(method)' but the body's method is '\(message.method)'", id: message.id)
        }
        guard let source = nameSources[message.method], case .string(let bodyName)? = message.params[source] else {
            return
        }
        let header = try single(MCPHTTP.name, of: request, id: message.id)
        guard let name = decode(header) else {
            throw .headerMismatch("Mcp-Name is not valid: a =?base64?…?= value must be Base64 of UTF-8", id: message.id)
        }
        guard name == bodyName else {
            throw .headerMismatch("Mcp-Name does not match params.\(source)", id: message.id)
        }
    }

    /// The one value of a required header.
    private static func single(_ name: HTTPField.Name, of request: Request, id: JSONRPCID) throws(JSONRPCError)
        -> String
    {
        let values = request.headers[values: name]
        guard let value = values.first else {
            throw .headerMismatch("the \(name.rawName) header is required on every 2026-07-28 request", id: id)
        }
        guard values.count == 1 else { throw .headerMismatch("\(name.rawName) was sent more than once", id: id) }
        // Visible ASCII only: anything else travels as =?base64?…?=, so that every hop reads the same value.
        guard value.utf8.allSatisfy({ (0x20...0x7E).contains($0) || $0 == 0x09 }) else {
            throw .headerMismatch(
                "\(name.rawName) holds characters outside visible ASCII: send them as =?base64?<Base64 of UTF-8>?=",
                id: id)
        }
        return value
    }

    /// A header value as MCP encodes it: plain visible ASCII, or `=?base64?<Base64 of UTF-8>?=` for anything else.
    static func decode(_ value: String) -> String? {
        let prefix = "=?base64?"
        let suffix = "?="
        guard value.hasPrefix(prefix), value.hasSuffix(suffix),
            value.utf8.count >= prefix.utf8.count + suffix.utf8.count
        else {
            return value
        }
        let encoded = value.dropFirst(prefix.count).dropLast(suffix.count)
        guard let data = Data(base64Encoded: String(encoded)) else { return nil }
        return String(bytes: data, encoding: .utf8)
    }
}
