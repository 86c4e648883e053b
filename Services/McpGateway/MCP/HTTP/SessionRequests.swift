import HTTPTypes
import Hummingbird
import JSON
import JWTAuth
import Logging
import ServiceSupport

/// The requests of sessions on `/mcp` (MCP 2025-03-26, 2025-06-18 and 2025-11-25): `initialize` opens a session and
/// returns its id in `Mcp-Session-Id`; every later request carries it. A session belongs to the user who opened it:
/// another user's token finds nothing (404), as does an expired or ended session.
///
/// Errors of a method (an unknown method, bad tool arguments) are ordinary JSON-RPC responses with status 200, as in
/// these revisions; errors of the request itself (no session, a malformed message) have their HTTP status.
struct SessionRequests: Sendable {
    let server: MCPServer

    func handle(_ message: JSONRPCMessage, request: Request, caller: MCPCaller, accept: AcceptHeader) async throws
        -> Response
    {
        if case .request(let rpc) = message, rpc.method == "initialize" {
            return initialize(rpc, request: request, caller: caller, accept: accept)
        }
        let requestID: JSONRPCID? = if case .request(let rpc) = message { rpc.id } else { nil }
        let session: MCPSession
        do { session = try self.session(of: request, caller: caller, id: requestID) } catch {
            return error.response
        }
        // From 2025-06-18 on, clients repeat the negotiated version on every request.
        if session.revision >= .v20250618, let version = request.headers[MCPHTTP.protocolVersion],
            version != session.revision.rawValue
        {
            return MCPHTTP.error(
                .invalidRequest(
                    "This session speaks MCP \(session.revision.rawValue), but MCP-Protocol-Version says \(version)",
                    id: requestID),
                status: .badRequest)
        }
        let headers: HTTPFields = [MCPHTTP.sessionID: session.id]
        guard case .request(let rpc) = message else { return MCPHTTP.accepted(headers: headers) }
        if let denied = server.stepUpChallenge(for: rpc, caller: caller) { return denied }
        guard let permit = server.sessionRequests.permit(session.id) else { return server.busyResponse(id: rpc.id) }
        defer { permit.release() }
        let outcome = await server.dispatcher.answer(rpc, revision: session.revision, caller: caller)
        var status = HTTPResponse.Status.ok
        var replyHeaders = headers
        if case .error(let error) = outcome { status = MCPHTTP.status(of: error, stateless: false) }
        if status == .unauthorized { replyHeaders[.wwwAuthenticate] = server.signInChallenge }
        return MCPHTTP.reply(outcome.response(id: rpc.id), accept: accept, status: status, headers: replyHeaders)
    }

    /// `initialize`: negotiates the revision (the one asked for when the gateway speaks it, else 2025-11-25) and
    /// opens a session, unless the gateway holds its maximum of sessions (503).
    private func initialize(_ rpc: JSONRPCRequest, request: Request, caller: MCPCaller, accept: AcceptHeader)
        -> Response
    {
        guard request.headers[MCPHTTP.sessionID] == nil else {
            return MCPHTTP.error(
                .invalidRequest(
                    "initialize opens a session: send it without Mcp-Session-Id (this request carries one)", id: rpc.id),
                status: .badRequest)
        }
        let requested: String
        do { requested = try Self.initializeParameters(rpc) } catch {
            return MCPHTTP.error(error, status: .badRequest)
        }
        let (revision, result) = server.dispatcher.initializeResult(requested: requested)
        let session: MCPSession
        do {
            session = try server.sessions.open(owner: caller.owner, revision: revision, transport: .streamableHTTP)
        } catch {
            return MCPHTTP.error(
                .busy(
                    "The gateway holds its maximum of \(server.limits.sessions.maximum) MCP sessions; retry later",
                    id: rpc.id),
                status: .serviceUnavailable, headers: [.retryAfter: "30"])
        }
        server.logger.info(
            "MCP session opened",
            metadata: [
                "oauth.client_id": "\(caller.identity.clientID ?? "")", "mcp.protocol_version": "\(revision.rawValue)",
            ])
        return MCPHTTP.reply(
            JSONRPCResponse.result(id: rpc.id, result), accept: accept, headers: [MCPHTTP.sessionID: session.id])
    }

    /// The protocol version an `initialize` request asks for, once its parameters are checked.
    static func initializeParameters(_ rpc: JSONRPCRequest) throws(JSONRPCError) -> String {
        guard case .string(let version)? = rpc.params["protocolVersion"] else {
            throw .invalidParams("initialize needs params.protocolVersion, a string", id: rpc.id)
        }
        guard case .object? = rpc.params["capabilities"] else {
            throw .invalidParams("initialize needs params.capabilities, an object", id: rpc.id)
        }
        if let info = rpc.params["clientInfo"], info.objectValue?["name"]?.stringValue == nil {
            throw .invalidParams("params.clientInfo must be an object with a name", id: rpc.id)
        }
        return version
    }

    /// The session a request names in `Mcp-Session-Id`, if the caller opened it on `/mcp`.
    func session(of request: Request, caller: MCPCaller, id: JSONRPCID?) throws(Refusal) -> MCPSession {
        guard let sessionID = request.headers[MCPHTTP.sessionID] else {
            throw Refusal(
                .invalidRequest(
                    "Mcp-Session-Id header is required: open a session with initialize first, or send MCP 2026-07-28 "
                        + "requests (MCP-Protocol-Version: 2026-07-28, with _meta), which need none",
                    id: id),
                status: request.method == .post ? .badRequest : .methodNotAllowed,
                headers: request.method == .post ? [:] : [.allow: "POST"])
        }
        guard let session = server.sessions.session(id: sessionID, owner: caller.owner),
            session.transport == .streamableHTTP
        else {
            throw Refusal(
                .invalidRequest(
                    "Session not found: it expired or was ended; send initialize to open a new one", id: id),
                status: .notFound)
        }
        return session
    }

    /// A JSON-RPC batch: part of 2025-03-26 only, inside a session. Each message is answered on its own (an invalid
    /// one with its error); notifications get no answer, so a batch of notifications is a 202.
    func batch(_ elements: [JSONValue], request: Request, caller: MCPCaller, accept: AcceptHeader) async throws
        -> Response
    {
        if elements.contains(where: { $0.objectValue?["method"] == "initialize" }) {
            return MCPHTTP.error(
                .invalidRequest("initialize cannot be part of a batch: send it alone"), status: .badRequest)
        }
        let session: MCPSession
        do { session = try self.session(of: request, caller: caller, id: nil) } catch { return error.response }
        guard session.revision.allowsBatches else {
            return MCPHTTP.error(
                .invalidRequest(
                    "JSON-RPC batches are not part of MCP \(session.revision.rawValue): send one message per request"),
                status: .badRequest)
        }
        guard !elements.isEmpty, elements.count <= server.limits.maximumBatchLength else {
            return MCPHTTP.error(
                .invalidRequest("A batch holds 1 to \(server.limits.maximumBatchLength) messages (MCP_MAX_BATCH)"),
                status: .badRequest)
        }
        let messages = elements.map { element in Result { () throws(JSONRPCError) in try JSONRPCMessage(element) } }
        let requests = messages.compactMap { message -> JSONRPCRequest? in
            if case .success(.request(let rpc)) = message { rpc } else { nil }
        }
        for rpc in requests {
            if let denied = server.stepUpChallenge(for: rpc, caller: caller) { return denied }
        }
        let headers: HTTPFields = [MCPHTTP.sessionID: session.id]
        guard !requests.isEmpty || messages.contains(where: { if case .failure = $0 { true } else { false } }) else {
            return MCPHTTP.accepted(headers: headers)
        }
        // A batch is answered with as many of its requests at once as the session and the user may have in flight
        // (the POST already holds one of the user's places): never more, and a batch within MCP_MAX_BATCH always fits.
        let width = min(
            max(requests.count, 1), server.limits.maximumInFlightPerSession, server.limits.maximumInFlightPerUser)
        guard let sessionPermit = server.sessionRequests.permit(session.id, count: width) else {
            return server.busyResponse(id: nil)
        }
        defer { sessionPermit.release() }
        let userPermit = width > 1 ? server.userRequests.permit(caller.owner, count: width - 1) : nil
        guard width == 1 || userPermit != nil else { return server.busyResponse(id: nil) }
        defer { userPermit?.release() }
        let revision = session.revision
        let server = self.server
        @Sendable func answer(_ index: Int, _ message: Result<JSONRPCMessage, JSONRPCError>) async -> (Int, [UInt8]?) {
            switch message {
            case .failure(let error): return (index, JSONRPCResponse.error(error))
            case .success(.request(let rpc)):
                let outcome = await server.dispatcher.answer(rpc, revision: revision, caller: caller)
                return (index, outcome.response(id: rpc.id))
            case .success: return (index, nil)
            }
        }
        let answers = await withTaskGroup(of: (Int, [UInt8]?).self) { group in
            var pending = messages.enumerated().makeIterator()
            for _ in 0..<width {
                guard let (index, message) = pending.next() else { break }
                group.addTask { await answer(index, message) }
            }
            var answers = [[UInt8]?](repeating: nil, count: messages.count)
            while let (index, response) = await group.next() {
                answers[index] = response
                if let (index, message) = pending.next() { group.addTask { await answer(index, message) } }
            }
            return answers.compactMap { $0 }
        }
        var body: [UInt8] = [UInt8(ascii: "[")]
        for (index, answer) in answers.enumerated() {
            if index > 0 { body.append(UInt8(ascii: ",")) }
            body.append(contentsOf: answer)
        }
        body.append(UInt8(ascii: "]"))
        return MCPHTTP.reply(body, accept: accept, headers: headers)
    }
}
