import Foundation
import HTTPTypes
import Hummingbird
import JSON
import JWTAuth
import Logging
import ServiceSupport

/// The parts of the MCP server that both transports (`/mcp`, and `/sse` with `/messages`) share: the dispatcher, the
/// sessions, the limits and their counters, and the step-up rule.
struct MCPServer: Sendable {
    let dispatcher: MCPDispatcher
    let sessions: SessionRegistry
    let limits: MCPLimits
    /// Requests being answered, per user and per session; open `subscriptions/listen` streams per user.
    let userRequests: InFlightLimiter
    let sessionRequests: InFlightLimiter
    let listenStreams: InFlightLimiter
    /// Open `subscriptions/listen` streams of all users, at most ``SessionRegistry/Limits/maximum``.
    let allListenStreams: InFlightLimiter
    /// Whether a tool whose scope the token lacks is refused with a 403 step-up challenge (the OAuth modes); behind
    /// Cloudflare Access there is nothing to step up to, and the tool answers with an error result instead.
    let stepUp: Bool
    let resourceMetadataURL: String
    let logger: Logger
    /// The `subscriptions/listen` streams that asked to hear of tool list changes.
    let toolListeners = ToolListListeners()

    init(
        tools: ToolBox, limits: MCPLimits, sessionSecret: String?, stepUp: Bool, resourceMetadataURL: String,
        server: ServerDescription = ServerDescription(), clock: any WallClock, logger: Logger
    ) {
        self.dispatcher = MCPDispatcher(
            tools: tools, server: server, cacheLifetimeMilliseconds: Int64(limits.cacheLifetime * 1000))
        self.sessions = SessionRegistry(
            limits: limits.sessions, ids: SessionIDs(secret: sessionSecret, lifetime: limits.sessionLifetime),
            clock: clock, logger: logger)
        self.limits = limits
        self.userRequests = InFlightLimiter(limit: limits.maximumInFlightPerUser)
        self.sessionRequests = InFlightLimiter(limit: limits.maximumInFlightPerSession)
        self.listenStreams = InFlightLimiter(limit: limits.maximumListenStreamsPerUser)
        self.allListenStreams = InFlightLimiter(limit: limits.sessions.maximum)
        self.stepUp = stepUp
        self.resourceMetadataURL = resourceMetadataURL
        self.logger = logger
    }

    /// Replaces the tools and tells every client that can hear it: sessions with an open event stream (2025
    /// revisions, and 2024-11-05 on `/sse`) and `subscriptions/listen` streams that asked for it (2026-07-28).
    /// Returns how many streams were told.
    @discardableResult
    func replaceTools(_ tools: ToolBox) -> Int {
        dispatcher.replace(tools)
        let message = EventStream.message(MCPDispatcher.toolListChanged(subscription: nil))
        var told = 0
        for stream in sessions.openStreams where stream.send(message) { told += 1 }
        for (stream, subscription) in toolListeners.all
        where stream.send(EventStream.message(MCPDispatcher.toolListChanged(subscription: subscription))) {
            told += 1
        }
        return told
    }

    /// MCP step-up authorization: a `tools/call` of a tool whose scope the token lacks is answered 403 with a
    /// `WWW-Authenticate` challenge naming the scopes the client should ask for (what it has plus what the tool
    /// needs), so that it can authorize again. The body is a JSON-RPC error with the request's id, which clients
    /// that do not step up show to the user.
    func stepUpChallenge(for request: JSONRPCRequest, caller: MCPCaller) -> Response? {
        guard stepUp, request.method == "tools/call", case .string(let tool)? = request.params["name"],
            let needed = dispatcher.tools.scopes(of: tool)?.missing(from: caller.scope),
            // More scope would not help a caller the policy refuses the tool.
            dispatcher.tools.allows(tool, for: caller.toolCaller(trace: nil))
        else { return nil }
        let message = "The tool \(tool) needs the \(needed) scope, which this access token does not have"
        let challenge = ErrorResponse(
            BearerAuthError.insufficientScope(needed).with(message: message), scope: caller.scope.union(needed),
            resourceMetadata: resourceMetadataURL)
        var headers = challenge.headers
        headers[.cacheControl] = "no-store"
        return MCPHTTP.error(
            .insufficientScope(message, scope: needed.description, id: request.id), status: .forbidden, headers: headers)
    }

    /// The `WWW-Authenticate` challenge sent with a ``JSONRPCError/signInRequiredCode`` error: `invalid_token`, so
    /// that the MCP client runs its authorization again (RFC 6750 §3.1; MCP authorization).
    var signInChallenge: String {
        BearerAuthError.rejected("The sign-in behind this access token has ended; authorize again")
            .challenge(resourceMetadata: resourceMetadataURL)
    }

    /// The error for a request refused for want of a place in ``userRequests`` or ``sessionRequests``.
    func busy(id: JSONRPCID?) -> JSONRPCError {
        .busy(
            "Too many requests at once: at most \(limits.maximumInFlightPerUser) per user and "
                + "\(limits.maximumInFlightPerSession) per session are answered at a time; retry when one has finished",
            id: id)
    }
}
