import HTTPTypes
import Hummingbird
import JSON
import JWTAuth
import ServiceLifecycle
import ServiceSupport

/// `/mcp`: the Streamable HTTP transport, for every revision that has it.
///
/// - A POST whose `MCP-Protocol-Version` header names 2026-07-28 (or a version the gateway does not know), or whose
///   `params._meta` names a protocol version without such a header, is a stateless request (``StatelessRequests``).
/// - `initialize` opens a session of 2025-03-26, 2025-06-18 or 2025-11-25; requests with its `Mcp-Session-Id` belong
///   to it, `GET` opens its event stream and `DELETE` ends it (``SessionRequests``).
///
/// Authentication has happened in ``MCPAuthenticationMiddleware``. A place among the user's requests in flight is
/// taken before the body is read, so that no user has more than ``MCPLimits/maximumInFlightPerUser`` bodies in the
/// gateway's memory.
struct StreamableHTTPEndpoint: Sendable {
    let server: MCPServer

    func addRoutes(to group: RouterGroup<GatewayRequestContext>) {
        group.post(use: post)
        group.get(use: get)
        group.delete(use: delete)
        group.refuseOtherMethods(on: "", allowed: [.get, .post, .delete])
    }

    @Sendable func post(_ request: Request, context: GatewayRequestContext) async throws -> Response {
        let caller = try context.requireCaller()
        let accept = AcceptHeader(request)
        guard accept.json || accept.eventStream else {
            return Refusal(
                .invalidRequest("Not Acceptable: the Accept header must allow application/json or text/event-stream"),
                status: .notAcceptable
            ).response
        }
        if let refusal = MCPHTTP.declaredTooLarge(request, limit: server.limits.maximumRequestBytes) {
            return refusal.response
        }
        guard let permit = server.userRequests.permit(caller.owner) else {
            return server.busyResponse(id: nil)
        }
        defer { permit.release() }
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

        let sessions = SessionRequests(server: server)
        if case .array(let batch) = value {
            return try await sessions.batch(batch, request: request, caller: caller, accept: accept)
        }
        let message: JSONRPCMessage
        do { message = try JSONRPCMessage(value) } catch { return MCPHTTP.error(error, status: .badRequest) }
        if Self.isStateless(message, params: value.objectValue?["params"]?.objectValue ?? [:], request: request) {
            return try await StatelessRequests(server: server).handle(
                message, request: request, caller: caller, accept: accept, connection: context.channel)
        }
        return try await sessions.handle(message, request: request, caller: caller, accept: accept)
    }

    /// Whether a POSTed message is a 2026-07-28 request rather than one of a session.
    static func isStateless(_ message: JSONRPCMessage, params: [String: JSONValue], request: Request) -> Bool {
        if message.method == "initialize" { return false }
        let hasSession = request.headers[MCPHTTP.sessionID] != nil
        let namesVersion = RequestEnvelope.namesProtocolVersion(params)
        guard let version = request.headers[MCPHTTP.protocolVersion] else { return !hasSession && namesVersion }
        // An unknown version is answered as 2026-07-28 answers it: with the versions the gateway speaks.
        guard let revision = ProtocolRevision(rawValue: version) else { return true }
        // A session revision's header on a request without a session but with 2026-07-28's `_meta`: the client
        // contradicts itself, and the stateless checks tell it so (-32020).
        return revision.isStateless || (!hasSession && namesVersion)
    }

    /// `GET` with `Mcp-Session-Id`: the session's event stream. The gateway sends no server-initiated messages (its
    /// tool list never changes), so the stream carries keep-alives; clients open it all the same.
    @Sendable func get(_ request: Request, context: GatewayRequestContext) async throws -> Response {
        let caller = try context.requireCaller()
        let session: MCPSession
        do { session = try SessionRequests(server: server).session(of: request, caller: caller, id: nil) } catch {
            return error.response
        }
        guard AcceptHeader(request).eventStream else {
            return Refusal(
                .invalidRequest(
                    "Not Acceptable: GET opens an event stream; the Accept header must allow text/event-stream"),
                status: .notAcceptable
            ).response
        }
        let stream = EventStream(limits: server.limits.stream)
        guard session.attach(stream) else {
            return Refusal(.invalidRequest("This session already has an open event stream"), status: .conflict)
                .response
        }
        let connection = context.channel
        await connection.onClientClose { stream.close(reason: "the client closed the connection") }
        // 2025-11-25 asks for an event with an id first, which primes a client to reconnect; earlier revisions would
        // read an event without data as a malformed message, so they get a comment.
        stream.send(session.revision >= .v20251125 ? Array("id: 0\ndata: \n\n".utf8) : Array(": stream open\n\n".utf8))
        var headers = MCPHTTP.streamHeaders
        headers[MCPHTTP.sessionID] = session.id
        let sessions = server.sessions
        return Response(
            status: .ok, headers: headers,
            body: ResponseBody { writer in
                await withGracefulShutdownHandler {
                    await stream.pump(into: &writer)
                } onGracefulShutdown: {
                    stream.close(reason: "the gateway is stopping")
                }
                // A client that does not read its stream loses its session, as on /sse.
                if stream.clientStoppedReading {
                    sessions.close(session.id, reason: stream.closeReason ?? "its client stopped reading")
                }
                try await stream.finish(&writer, connection: connection)
            })
    }

    /// `DELETE` with `Mcp-Session-Id`: the client ends its session.
    @Sendable func delete(_ request: Request, context: GatewayRequestContext) async throws -> Response {
        let caller = try context.requireCaller()
        guard let id = request.headers[MCPHTTP.sessionID] else {
            // Without a session (MCP 2026-07-28), POST is the only method.
            return MCPHTTP.error(
                .invalidRequest("DELETE ends a session of MCP 2025 revisions: send its Mcp-Session-Id"),
                status: .methodNotAllowed, headers: [.allow: "POST"])
        }
        guard server.sessions.end(id: id, owner: caller.owner) else {
            return MCPHTTP.error(
                .invalidRequest("Session not found: it expired or was ended; send initialize to open a new one"),
                status: .notFound)
        }
        return Response(status: .ok)
    }
}

extension GatewayRequestContext {
    /// The caller ``MCPAuthenticationMiddleware`` authenticated.
    func requireCaller() throws -> MCPCaller {
        guard let caller else { throw ErrorResponse(BearerAuthError.missingToken) }
        return caller
    }
}

extension MCPServer {
    /// 429 with `Retry-After`, for a request refused because the user or the session has too many in flight.
    func busyResponse(id: JSONRPCID?) -> Response {
        MCPHTTP.error(busy(id: id), status: .tooManyRequests, headers: [.retryAfter: "1"])
    }
}
