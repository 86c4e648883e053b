import Foundation
import HTTPTypes
import Hummingbird
import JWTAuth
import Logging
import NIOCore
import ServiceLifecycle
import ServiceSupport

/// `GET /sse` and `POST /messages?sessionId=…`: the HTTP+SSE transport of MCP 2024-11-05, for older clients and the
/// original Cloudflare walkthrough. Same authentication (``MCPAuthenticationMiddleware``), sessions and tools as `/mcp`.
///
/// - `GET /sse` opens a session and streams it: first an `endpoint` event with the URL to POST to, then a `message`
///   event for every server-to-client message, and a comment every ``keepAliveInterval`` so that proxies keep the
///   connection and the gateway notices a client that left. The session ends with the stream.
/// - `POST /messages?sessionId=…` takes one JSON-RPC message and answers `202 Accepted`; the response travels on the
///   stream. Only the user who opened the session can post to it.
///
/// A tool whose scope the token lacks is answered with a tool error on the stream, not with a 403 step-up challenge:
/// this transport predates step-up authorization, and its clients do not read the POST's status.
struct LegacySSEEndpoint {
    let configuration: GatewayConfiguration
    let sessions: SessionRegistry
    let fastPath: ToolRequestFastPath
    var keepAliveInterval: Duration = .seconds(15)

    /// The path clients POST to, relative to the host so that it works whichever host name the client used.
    var messagesPath: String { (URLComponents(string: configuration.publicURL)?.path ?? "") + "/messages" }

    func addRoutes(sse: RouterGroup<GatewayRequestContext>, messages: RouterGroup<GatewayRequestContext>) {
        sse.get(use: stream)
        sse.refuseOtherMethods(on: "", allowed: [.get])
        messages.post(use: post)
        messages.refuseOtherMethods(on: "", allowed: [.post])
    }

    @Sendable func stream(_ request: Request, context: GatewayRequestContext) async throws -> Response {
        guard let caller = context.caller else { throw ErrorResponse(BearerAuthError.missingToken) }
        if let accept = request.headers[.accept], !Self.accepts(accept, "text/event-stream") {
            throw ErrorResponse(
                status: .notAcceptable, code: "not_acceptable",
                message: "GET /sse answers with an event stream: the Accept header must allow text/event-stream")
        }
        let (session, transport) = try await sessions.openLegacySSE(owner: caller.owner)
        await transport.announce(endpoint: messagesPath + "?sessionId=" + session.id)
        context.logger.info(
            "MCP session opened (HTTP+SSE)", metadata: ["oauth.client_id": "\(caller.identity.clientID ?? "")"])

        let sessions = self.sessions
        let interval = keepAliveInterval
        let logger = context.logger
        return Response(
            status: .ok,
            headers: [
                .contentType: "text/event-stream", .cacheControl: "no-cache, no-transform",
                HTTPField.Name("X-Accel-Buffering")!: "no",
            ],
            body: ResponseBody { writer in
                await withTaskGroup(of: Void.self) { group in
                    group.addTask {
                        while !Task.isCancelled {
                            try? await Task.sleep(for: interval)
                            await transport.keepAlive()
                        }
                    }
                    // The stream also ends when the gateway shuts down, which would otherwise wait for it.
                    await withGracefulShutdownHandler {
                        do {
                            for await event in transport.events { try await writer.write(ByteBuffer(bytes: event)) }
                        } catch {
                            logger.debug("HTTP+SSE client went away", metadata: ["error": "\(error)"])
                        }
                    } onGracefulShutdown: {
                        Task { await transport.disconnect() }
                    }
                    group.cancelAll()
                }
                // Whatever ended the stream (the session closed, or the client left), the session ends with it.
                await sessions.close(session.id, reason: "its event stream ended")
                try? await writer.finish(nil)
            })
    }

    @Sendable func post(_ request: Request, context: GatewayRequestContext) async throws -> Response {
        guard let caller = context.caller else { throw ErrorResponse(BearerAuthError.missingToken) }
        guard let id = request.uri.queryParameters["sessionId"].map(String.init), !id.isEmpty else {
            throw ErrorResponse.badRequest(
                "The sessionId query parameter is missing: POST to the URL of the endpoint event")
        }
        guard let session = await sessions.session(id: id, owner: caller.owner), let transport = session.legacySSE,
            await transport.isOpen
        else {
            throw ErrorResponse.notFound("Session not found: it expired or was ended; open a new one with GET /sse")
        }
        guard request.mediaTypeIs("application/json") else {
            throw ErrorResponse.unsupportedMediaType("application/json")
        }
        let body = try await request.collectBody(limit: MCPEndpoint.bodyLimit)
        guard let message = try? JSONValue(parsing: body.readableBytesView).objectValue, message["jsonrpc"] == "2.0"
        else {
            throw ErrorResponse.badRequest("The body is not a JSON-RPC 2.0 message")
        }
        if let call = ToolRequestFastPath.parse(message) {
            // Answered on the stream; the client is not kept waiting for the tool.
            let fastPath = self.fastPath
            Task { try? await transport.send(Data(await fastPath.answer(call, caller: caller))) }
        } else {
            await transport.deliver(Data(body.readableBytesView))
        }
        return Response(
            status: .accepted, headers: [.contentType: "text/plain; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(string: "Accepted")))
    }

    /// Whether an `Accept` header allows `type`: by name, `type/*` or `*/*`, unless with `q=0` ("not acceptable").
    static func accepts(_ accept: String, _ type: String) -> Bool {
        let family = (type.split(separator: "/").first ?? "") + "/*"
        return accept.split(separator: ",").contains { range in
            let parameters = range.split(separator: ";").dropFirst().map {
                $0.replacingOccurrences(of: " ", with: "").lowercased()
            }
            let refused = parameters.contains { $0.hasPrefix("q=") && (Double($0.dropFirst(2)) ?? 1) == 0 }
            let name = MediaType.essence(range)
            return !refused && (name == type || name == "*/*" || name == family)
        }
    }
}
