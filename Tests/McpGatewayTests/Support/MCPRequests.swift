import Foundation
import HTTPTypes
import HummingbirdTesting
import JSON
import JWTAuth
import NIOCore
import Testing

@testable import McpGateway

extension TestClientProtocol {
    /// A 2026-07-28 request: `params._meta` with the protocol version and capabilities, and the headers the revision
    /// requires (MCP-Protocol-Version, Mcp-Method, Mcp-Name for tools/call). `headers` replaces those headers; `meta`
    /// replaces the `_meta` object (`.null` leaves it out).
    func stateless(
        _ token: String?, id: JSONValue = 1, method: String, params: [String: JSONValue] = [:],
        version: String = "2026-07-28", meta: JSONValue? = nil, headers: HTTPFields? = nil, extra: HTTPFields = [:]
    ) async throws -> MCPReply {
        var params = params
        let envelope: JSONValue =
            meta ?? [
                "io.modelcontextprotocol/protocolVersion": .string(version),
                "io.modelcontextprotocol/clientCapabilities": [:],
                "io.modelcontextprotocol/clientInfo": ["name": "swift-tests", "version": "1"],
            ]
        if envelope != .null { params["_meta"] = envelope }
        var message: [String: JSONValue] = ["jsonrpc": "2.0", "method": .string(method), "params": .object(params)]
        if id != .null { message["id"] = id }
        var fields = headers ?? [MCPHTTP.protocolVersion: version, MCPHTTP.method: method]
        if headers == nil, method == "tools/call", let name = params["name"]?.stringValue {
            fields[MCPHTTP.name] = name
        }
        fields.append(contentsOf: extra)
        return try await mcp(
            token, String(decoding: JSONValue.object(message).serialized(), as: UTF8.self), extra: fields)
    }

    /// Opens a session of `revision` (initialize, then notifications/initialized); returns its id.
    func initialize(_ token: String, revision: String) async throws -> String {
        let reply = try await mcp(
            token,
            #"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"\#(revision)","capabilities":{},"clientInfo":{"name":"test","version":"1"}}}"#
        )
        #expect(reply.status == .ok)
        let session = try #require(reply.response.headers[MCPHTTP.sessionID])
        let initialized = try await mcp(
            token, session: session, #"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
            extra: [MCPHTTP.protocolVersion: revision])
        #expect(initialized.status == .accepted)
        return session
    }
}

extension MCPReply {
    /// The error object of the first message.
    var error: [String: JSONValue]? { messages.first?["error"]?.objectValue }
    var errorCode: JSONValue? { error?["code"] }
    /// The id of the first message, `.null` when it is `null`, `nil` when absent.
    var id: JSONValue? { messages.first?["id"] }
}
