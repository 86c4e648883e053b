import HTTPTypes
import Hummingbird
import JSON
import JWTAuth
import NIOCore
import ServiceLifecycle
import ServiceSupport

/// The requests of MCP 2026-07-28 on `/mcp`: each stands alone, so that any gateway instance can answer it.
///
/// Checked in this order, the first failure answering: `params._meta` carries the protocol version and the client's
/// capabilities (`-32602`); the `MCP-Protocol-Version`, `Mcp-Method` and `Mcp-Name` headers match the body
/// (`-32020`); the version is one the gateway speaks (`-32022`, listing them); the token has the tool's scope (403
/// step-up). Then the method: `server/discover`, `tools/list`, `tools/call`, and `subscriptions/listen`, whose answer
/// is a stream.
struct StatelessRequests: Sendable {
    let server: MCPServer

    func handle(
        _ message: JSONRPCMessage, request: Request, caller: MCPCaller, accept: AcceptHeader, connection: any Channel
    ) async throws -> Response {
        switch message {
        case .response:
            return MCPHTTP.error(
                .invalidRequest("A 2026-07-28 client sends no responses: this server sends no requests"),
                status: .badRequest)
        case .notification:
            // No client notification is defined for this revision over HTTP (closing a stream cancels its request):
            // acknowledged and dropped, unless it names a version the gateway does not speak.
            if let version = request.headers[MCPHTTP.protocolVersion], ProtocolRevision(rawValue: version) == nil {
                return MCPHTTP.error(.unsupportedProtocolVersion(version, id: nil), status: .badRequest)
            }
            return MCPHTTP.accepted()
        case .request(let rpc):
            do throws(JSONRPCError) {
                // A version the gateway does not know is answered first: the client learns what it can use.
                if let version = request.headers[MCPHTTP.protocolVersion], ProtocolRevision(rawValue: version) == nil {
                    throw JSONRPCError.unsupportedProtocolVersion(version, id: rpc.id)
                }
                let envelope = try RequestEnvelope(rpc)
                try StandardHeaders.validate(request, message: rpc, protocolVersion: envelope.protocolVersion)
                guard let revision = ProtocolRevision(rawValue: envelope.protocolVersion), revision.isStateless else {
                    throw JSONRPCError.unsupportedProtocolVersion(envelope.protocolVersion, id: rpc.id)
                }
            } catch {
                return MCPHTTP.error(error, status: .badRequest)
            }
            if let denied = server.stepUpChallenge(for: rpc, caller: caller) { return denied }
            if rpc.method == "subscriptions/listen" {
                return await listen(rpc, caller: caller, accept: accept, connection: connection)
            }
            let outcome = await server.dispatcher.answer(rpc, revision: .v20260728, caller: caller)
            var status = HTTPResponse.Status.ok
            if case .error(let error) = outcome { status = MCPHTTP.status(of: error, stateless: true) }
            let headers: HTTPFields = status == .unauthorized ? [.wwwAuthenticate: server.signInChallenge] : [:]
            return MCPHTTP.reply(outcome.response(id: rpc.id), accept: accept, status: status, headers: headers)
        }
    }

    /// `subscriptions/listen`: a stream that starts with the acknowledgement of the notifications the gateway will
    /// send (none: its tool list never changes), then keep-alives until the client closes it; on shutdown, the
    /// result that ends the subscription gracefully.
    private func listen(_ rpc: JSONRPCRequest, caller: MCPCaller, accept: AcceptHeader, connection: any Channel) async
        -> Response
    {
        guard accept.eventStream else {
            return Refusal(
                .invalidRequest(
                    "Not Acceptable: subscriptions/listen answers with an event stream; allow text/event-stream",
                    id: rpc.id),
                status: .notAcceptable
            ).response
        }
        if let problem = Self.filterProblem(rpc.params["notifications"]) {
            return MCPHTTP.error(.invalidParams(problem, id: rpc.id), status: .badRequest)
        }
        guard let permit = server.listenStreams.permit(caller.owner) else {
            return MCPHTTP.error(
                .busy(
                    "Too many open subscriptions/listen streams: at most \(server.limits.maximumListenStreamsPerUser) per user",
                    id: rpc.id),
                status: .tooManyRequests, headers: [.retryAfter: "5"])
        }
        guard let everyone = server.allListenStreams.permit("all") else {
            return MCPHTTP.error(
                .busy("The gateway holds its maximum of open subscriptions/listen streams; retry later", id: rpc.id),
                status: .serviceUnavailable, headers: [.retryAfter: "30"])
        }
        let stream = EventStream(limits: server.limits.stream)
        await connection.onClientClose { stream.close(reason: "the client closed the connection") }
        let wantsToolChanges = rpc.params["notifications"]?.objectValue?["toolsListChanged"] == .bool(true)
        stream.send(
            EventStream.message(server.dispatcher.acknowledgement(of: rpc.id, toolsListChanged: wantsToolChanges)))
        let listener = wantsToolChanges && server.dispatcher.server.toolsCanChange
            ? server.toolListeners.add(stream, subscription: rpc.id) : nil
        let end = EventStream.message(server.dispatcher.subscriptionEnd(of: rpc.id))
        return Response(
            status: .ok, headers: MCPHTTP.streamHeaders,
            body: ResponseBody { writer in
                await withGracefulShutdownHandler {
                    await stream.pump(into: &writer)
                } onGracefulShutdown: {
                    stream.close(reason: "the gateway is stopping", finalEvent: end)
                }
                if let listener { server.toolListeners.remove(listener) }
                permit.release()
                everyone.release()
                try await stream.finish(&writer, connection: connection)
            })
    }

    /// What is wrong with a `SubscriptionFilter`, if anything.
    static func filterProblem(_ filter: JSONValue?) -> String? {
        guard case .object(let members)? = filter else {
            return "subscriptions/listen needs params.notifications, an object naming the notifications wanted"
        }
        for (name, value) in members {
            switch name {
            case "toolsListChanged", "promptsListChanged", "resourcesListChanged":
                guard case .bool = value else { return "notifications.\(name) must be true or false" }
            case "resourceSubscriptions":
                guard value.stringArrayValue != nil else {
                    return "notifications.resourceSubscriptions must be an array of resource URIs"
                }
            default: continue
            }
        }
        return nil
    }
}
