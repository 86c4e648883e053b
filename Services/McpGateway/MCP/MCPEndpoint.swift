import Foundation
import HTTPTypes
import Hummingbird
import JWTAuth
import Logging
import MCP
import NIOCore
import ServiceLifecycle
import ServiceSupport

/// `/mcp`: the Streamable HTTP endpoint. This is the one file that speaks both Hummingbird and the MCP SDK, whose
/// `HTTPRequest`, `HTTPResponse`, `Server` and `RequestContext` names clash; names are qualified here.
///
/// Authentication has happened in ``MCPAuthenticationMiddleware``. This adapter finds or opens the caller's session,
/// refuses a `tools/call` whose scope the token lacks with a 403 step-up challenge, answers tool requests through
/// ``ToolRequestFastPath``, hands everything else to the session's transport, and turns the transport's answer (JSON,
/// 202, or an SSE stream) into a Hummingbird response.
struct MCPEndpoint {
    let configuration: GatewayConfiguration
    let sessions: SessionRegistry
    let fastPath: ToolRequestFastPath
    /// Whether a missing tool scope is answered with a 403 step-up challenge (the OAuth modes); behind Cloudflare
    /// Access there is nothing to step up to, and the tool answers with an error instead.
    let stepUp: Bool

    static let bodyLimit = 1024 * 1024
    static let sessionHeader = HTTPField.Name("Mcp-Session-Id")!

    func addRoutes(to group: RouterGroup<GatewayRequestContext>) {
        group.post(use: handle)
        group.get(use: handle)
        group.delete(use: handle)
    }

    @Sendable func handle(_ request: Hummingbird.Request, context: GatewayRequestContext) async throws -> Response {
        guard let caller = context.caller else { throw ErrorResponse(BearerAuthError.missingToken) }
        let body: Data? =
            request.method == .post ? Data(try await request.collectBody(limit: Self.bodyLimit).readableBytesView) : nil
        // Parsed once here; the SDK parses again only what it handles.
        let message = body.flatMap { try? JSONValue(parsing: $0).objectValue }
        if stepUp, let message, let denied = stepUpChallenge(for: message, caller: caller) { throw denied }

        let session: SessionRegistry.Session
        let transport: StatefulHTTPServerTransport
        if let id = request.headers[Self.sessionHeader] {
            guard let found = await sessions.session(id: id, owner: caller.owner), let http = found.streamableHTTP
            else {
                return Self.jsonRPCError(status: .notFound, code: -32001, "Session not found: it expired or was ended")
            }
            (session, transport) = (found, http)
        } else if message?["method"]?.stringValue == "initialize" {
            (session, transport) = try await sessions.openStreamableHTTP(owner: caller.owner)
            context.logger.info(
                "MCP session opened", metadata: ["oauth.client_id": "\(caller.identity.clientID ?? "")"])
        } else {
            return Self.jsonRPCError(
                status: .badRequest, code: -32000, "Bad Request: Mcp-Session-Id header is required")
        }

        if let message, let call = ToolRequestFastPath.parse(message), Self.acceptsJSON(request) {
            if let refusal = Self.unsupportedProtocolVersion(request) { return refusal }
            return Response(
                status: .ok, headers: [.contentType: "application/json", Self.sessionHeader: session.id],
                body: .init(byteBuffer: ByteBuffer(bytes: await fastPath.answer(call, caller: caller))))
        }
        let answer = await transport.handleRequest(sdkRequest(request, body: body))
        if request.method == .delete, answer.statusCode == 200 { await sessions.close(session.id) }
        let sessions = self.sessions
        return Self.response(answer) { await sessions.close(session.id, reason: "the gateway is stopping") }
    }

    /// MCP step-up authorization: a `tools/call` of a tool whose scope the token lacks is answered 403 with the scopes
    /// the client should ask for (what it has plus what the tool needs), so it can re-authorize.
    private func stepUpChallenge(for message: [String: JSONValue], caller: MCPCaller) -> ErrorResponse? {
        guard message["method"]?.stringValue == "tools/call",
            let tool = message["params"]?.objectValue?["name"]?.stringValue,
            let needed = ToolCatalog.requiredScope(tool), !caller.scope.contains(needed)
        else { return nil }
        let error = BearerAuthError.insufficientScope([needed]).with(
            message: "The tool \(tool) needs the \(needed) scope, which this access token does not have")
        return ErrorResponse(
            error, scope: caller.scope.union([needed]), resourceMetadata: configuration.resourceMetadataURL)
    }

    private func sdkRequest(_ request: Hummingbird.Request, body: Data?) -> MCP.HTTPRequest {
        var headers: [String: String] = [:]
        for field in request.headers {
            headers[field.name.rawName] = headers[field.name.rawName].map { "\($0), \(field.value)" } ?? field.value
        }
        // NIO moves Host into :authority; put it back for anything in the SDK that looks at it.
        if let authority = request.head.authority { headers["Host"] = authority }
        return MCP.HTTPRequest(method: request.method.rawValue, headers: headers, body: body, path: request.uri.path)
    }

    private static func response(_ answer: MCP.HTTPResponse, endSession: @escaping @Sendable () async -> Void)
        -> Response
    {
        var headers = HTTPFields()
        for (name, value) in answer.headers {
            if let field = HTTPField.Name(name) { headers[field] = value }
        }
        let status = HTTPResponse.Status(code: answer.statusCode)
        switch answer {
        case .stream(let stream, _):
            return Response(
                status: status, headers: headers,
                body: ResponseBody { writer in
                    // An open stream must not hold up the gateway's shutdown: ending the session ends it.
                    try await withGracefulShutdownHandler {
                        for try await chunk in stream { try await writer.write(ByteBuffer(bytes: chunk)) }
                    } onGracefulShutdown: {
                        Task { await endSession() }
                    }
                    try await writer.finish(nil)
                })
        default:
            let body = answer.bodyData.map { ResponseBody(byteBuffer: ByteBuffer(bytes: $0)) } ?? ResponseBody()
            return Response(status: status, headers: headers, body: body)
        }
    }

    private static func jsonRPCError(status: HTTPResponse.Status, code: Int, _ message: String) -> Response {
        let body: JSONValue = [
            "jsonrpc": "2.0", "id": .null, "error": ["code": .integer(Int64(code)), "message": .string(message)],
        ]
        return Response(
            status: status, headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(bytes: (try? JSONEncoder().encode(body)) ?? Data())))
    }

    /// Whether the client accepts a JSON response. The Streamable HTTP specification requires clients to accept both
    /// JSON and SSE; one that accepts only `text/event-stream` is left to the SDK, which refuses it with 406.
    private static func acceptsJSON(_ request: Hummingbird.Request) -> Bool {
        guard let accept = request.headers[.accept] else { return true }
        return accept.split(separator: ",").contains { item in
            let type = item.split(separator: ";").first?.trimmingCharacters(in: .whitespaces).lowercased() ?? ""
            return type == "application/json" || type == "application/*" || type == "*/*"
        }
    }

    /// The SDK's own rule for the `MCP-Protocol-Version` header, for requests answered without it.
    private static func unsupportedProtocolVersion(_ request: Hummingbird.Request) -> Response? {
        guard let version = request.headers[HTTPField.Name("MCP-Protocol-Version")!],
            !Version.supported.contains(version)
        else { return nil }
        return jsonRPCError(
            status: .badRequest, code: -32600,
            "Bad Request: Unsupported protocol version: \(version). Supported: \(Version.supported.sorted().joined(separator: ", "))"
        )
    }

}
