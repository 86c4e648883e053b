import Foundation
import HTTPTypes
import Hummingbird
import JSON
import JWTAuth
import Logging
import NIOCore
import ServiceLifecycle
import ServiceSupport

/// `GET /sse` and `POST /messages?sessionId=…`: the HTTP+SSE transport of MCP 2024-11-05, for older clients and the
/// original Cloudflare walkthrough. Same authentication (``MCPAuthenticationMiddleware``), sessions, limits and tools
/// as `/mcp`.
///
/// - `GET /sse` opens a session and streams it: first an `endpoint` event with the URL to POST to, then a `message`
///   event for every response. The session ends with the stream.
/// - `POST /messages?sessionId=…` takes one JSON-RPC message and answers `202 Accepted`; the response travels on the
///   stream. Only the user who opened the session can post to it.
///
/// The requests are answered by tasks of the `GET /sse` request itself (at most ``MCPLimits/maximumInFlightPerSession``
/// at a time per session, and no more than ``MCPLimits/maximumInFlightPerUser`` per user), so they end with the
/// stream; the stream holds at most ``MCPLimits/stream`` bytes for a client that does not read it.
///
/// A tool whose scope the token lacks is answered with a tool error on the stream, not with a 403 step-up challenge:
/// this transport predates step-up authorization, and its clients do not read the POST's status.
struct LegacySSEEndpoint: Sendable {
    let server: MCPServer
    /// The path clients POST to, relative to the host so that it works whichever host name the client used.
    let messagesPath: String

    init(server: MCPServer, publicURL: String) {
        self.server = server
        self.messagesPath = (URLComponents(string: publicURL)?.path ?? "") + "/messages"
    }

    func addRoutes(sse: RouterGroup<GatewayRequestContext>, messages: RouterGroup<GatewayRequestContext>) {
        sse.get(use: stream)
        sse.refuseOtherMethods(on: "", allowed: [.get])
        messages.post(use: post)
        messages.refuseOtherMethods(on: "", allowed: [.post])
    }

    /// A request waiting to be answered on its session's stream, with the places it holds among the requests in flight.
    struct Pending: Sendable {
        let request: JSONRPCRequest
        let caller: MCPCaller
        let permits: [InFlightLimiter.Permit]
    }

    @Sendable func stream(_ request: Request, context: GatewayRequestContext) async throws -> Response {
        let caller = try context.requireCaller()
        guard AcceptHeader(request).eventStream else {
            throw ErrorResponse(
                status: .notAcceptable, code: "not_acceptable",
                message: "GET /sse answers with an event stream: the Accept header must allow text/event-stream")
        }
        let session: MCPSession
        do {
            session = try server.sessions.open(owner: caller.owner, revision: .v20241105, transport: .legacySSE)
        } catch {
            throw ErrorResponse(
                status: .serviceUnavailable, code: "temporarily_unavailable",
                message: "The gateway holds its maximum of \(server.limits.sessions.maximum) MCP sessions; retry later",
                headers: [.retryAfter: "30"])
        }
        let stream = EventStream(limits: server.limits.stream)
        _ = session.attach(stream)
        let connection = context.channel
        await connection.onClientClose { stream.close(reason: "the client closed the connection") }
        let (inbox, submissions) = AsyncStream<Pending>.makeStream()
        session.setInbox(submissions)
        stream.send(EventStream.event("endpoint", Array((messagesPath + "?sessionId=" + session.id).utf8)))
        context.logger.info(
            "MCP session opened (HTTP+SSE)", metadata: ["oauth.client_id": "\(caller.identity.clientID ?? "")"])

        let server = self.server
        return Response(
            status: .ok, headers: MCPHTTP.streamHeaders,
            body: ResponseBody { writer in
                await withTaskGroup(of: Void.self) { group in
                    group.addTask { await Self.answer(inbox, on: stream, server: server) }
                    // The stream also ends when the gateway shuts down, which would otherwise wait for it.
                    await withGracefulShutdownHandler {
                        await stream.pump(into: &writer)
                    } onGracefulShutdown: {
                        stream.close(reason: "the gateway is stopping")
                    }
                    // Whatever ended the stream (the client left or stopped reading, shutdown), the session ends with
                    // it, and its unanswered requests are dropped.
                    server.sessions.close(session.id, reason: stream.closeReason ?? "its event stream ended")
                    submissions.finish()
                    group.cancelAll()
                }
                try await stream.finish(&writer, connection: connection)
            })
    }

    /// Answers the session's requests as they come, at most the session's limit at a time, writing each response
    /// to the stream.
    private static func answer(_ inbox: AsyncStream<Pending>, on stream: EventStream, server: MCPServer) async {
        // Discarding: a finished answer leaves nothing behind for the rest of the session.
        await withDiscardingTaskGroup { group in
            for await pending in inbox {
                group.addTask {
                    let outcome: JSONRPCOutcome
                    if pending.request.method == "initialize" {
                        outcome = Self.initialize(pending.request, server: server)
                    } else {
                        outcome = await server.dispatcher.answer(
                            pending.request, revision: .v20241105, caller: pending.caller)
                    }
                    for permit in pending.permits { permit.release() }
                    stream.send(EventStream.message(outcome.response(id: pending.request.id)))
                }
            }
        }
    }

    /// `initialize` on a session the stream opened: the revision is the one asked for when the gateway speaks it.
    private static func initialize(_ rpc: JSONRPCRequest, server: MCPServer) -> JSONRPCOutcome {
        do {
            let requested = try SessionRequests.initializeParameters(rpc)
            return .result(server.dispatcher.initializeResult(requested: requested).1)
        } catch {
            return .error(error)
        }
    }

    @Sendable func post(_ request: Request, context: GatewayRequestContext) async throws -> Response {
        let caller = try context.requireCaller()
        guard let id = request.uri.queryParameters["sessionId"].map(String.init), !id.isEmpty else {
            throw ErrorResponse.badRequest(
                "The sessionId query parameter is missing: POST to the URL of the endpoint event")
        }
        guard let session = server.sessions.session(id: id, owner: caller.owner), session.transport == .legacySSE,
            let stream = session.stream
        else {
            throw ErrorResponse.notFound("Session not found: it expired or was ended; open a new one with GET /sse")
        }
        if let refusal = MCPHTTP.declaredTooLarge(request, limit: server.limits.maximumRequestBytes) {
            return refusal.response
        }
        // The user's place is taken before the body is read; the request keeps it until it is answered (a permit
        // dropped on an early return gives its place back).
        guard let userPermit = server.userRequests.permit(caller.owner) else {
            return server.busyResponse(id: nil)
        }
        let value: JSONValue
        do {
            let body = try await MCPHTTP.body(
                of: request, limit: server.limits.maximumRequestBytes, connection: context.channel)
            value = try JSONValue(parsing: body.readableBytesView)
        } catch let refusal as Refusal {
            return refusal.response
        } catch {
            return MCPHTTP.error(.parseError("\(error)"), status: .badRequest)
        }
        let message: JSONRPCMessage
        do { message = try JSONRPCMessage(value) } catch {
            if value.arrayValue != nil {
                return MCPHTTP.error(.invalidRequest("POST one JSON-RPC message at a time"), status: .badRequest)
            }
            // The client reads its answers from the stream: one it can match to its request goes there too.
            if error.id != nil { stream.send(EventStream.message(JSONRPCResponse.error(error))) }
            return MCPHTTP.error(error, status: .badRequest)
        }
        guard case .request(let rpc) = message else { return Self.accepted }
        guard let sessionPermit = server.sessionRequests.permit(session.id) else {
            let busy = server.busy(id: rpc.id)
            stream.send(EventStream.message(JSONRPCResponse.error(busy)))
            return MCPHTTP.error(busy, status: .tooManyRequests, headers: [.retryAfter: "1"])
        }
        guard session.submit(Pending(request: rpc, caller: caller, permits: [userPermit, sessionPermit])) else {
            throw ErrorResponse.notFound("Session not found: its event stream has ended; open a new one with GET /sse")
        }
        return Self.accepted
    }

    private static var accepted: Response {
        Response(
            status: .accepted, headers: [.contentType: "text/plain; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(string: "Accepted")))
    }
}
