import JSON
import JWTAuth
import ServiceSupport
import Synchronization

/// Answers MCP requests, whichever transport brought them: `ping`, `tools/list`, `tools/call` and `server/discover`,
/// each as the request's protocol revision specifies. `initialize` and `subscriptions/listen` change the transport's
/// state (a session, a stream) and are answered by the transports, with ``initializeResult(requested:)`` and
/// ``acknowledgement(of:)``.
///
/// Results of 2026-07-28 carry `resultType` and the server's identity in `_meta`; list and discovery results carry
/// cache hints. The answers that never change are encoded once.
struct MCPDispatcher: Sendable {
    let server: ServerDescription
    /// How long a 2026-07-28 client may reuse the tool list and the discovery result (`ttlMs`).
    let cacheLifetimeMilliseconds: Int64

    /// The tools and their lists, encoded once per tool list: replaced together when the documents are reloaded. A
    /// class, so that reading the current one per request costs a reference, not a copy.
    private final class Listing: Sendable {
        let tools: ToolBox
        let session: [UInt8]
        let stateless: [UInt8]

        init(tools: ToolBox, session: [UInt8], stateless: [UInt8]) {
            self.tools = tools
            self.session = session
            self.stateless = stateless
        }
    }

    private let listing: SharedListing
    private let discovery: [UInt8]
    /// `resultType` and `_meta`, which every 2026-07-28 result carries, encoded once.
    private let statelessResultMembers: [(name: String, json: [UInt8])]

    /// The tools as they are now.
    var tools: ToolBox { listing.current.tools }

    init(tools: ToolBox, server: ServerDescription = ServerDescription(), cacheLifetimeMilliseconds: Int64 = 300_000) {
        self.server = server
        self.cacheLifetimeMilliseconds = cacheLifetimeMilliseconds
        self.statelessResultMembers = [
            ("resultType", JSONValue.string("complete").serialized()), ("_meta", server.resultMeta.serialized()),
        ]
        self.listing = SharedListing(Self.listing(of: tools, server: server, ttl: cacheLifetimeMilliseconds))
        let cacheHints: [String: JSONValue] = [
            "resultType": "complete", "_meta": server.resultMeta, "ttlMs": .integer(cacheLifetimeMilliseconds),
            "cacheScope": "public",
        ]
        self.discovery = JSONValue.object(
            cacheHints.merging([
                "supportedVersions": .array(ProtocolRevision.supportedNames.map(JSONValue.string)),
                "capabilities": server.capabilities, "instructions": .string(server.instructions),
            ]) { $1 }
        ).serialized()
    }

    /// Replaces the tools (the documents were reloaded); requests already being answered finish with the old ones.
    func replace(_ tools: ToolBox) {
        listing.current = Self.listing(of: tools, server: server, ttl: cacheLifetimeMilliseconds)
    }

    private static func listing(of tools: ToolBox, server: ServerDescription, ttl: Int64) -> Listing {
        // The list is the same for every caller: any client or shared cache may keep it.
        let cacheHints: [String: JSONValue] = [
            "resultType": "complete", "_meta": server.resultMeta, "ttlMs": .integer(ttl), "cacheScope": "public",
        ]
        return Listing(
            tools: tools, session: JSONValue.object(["tools": tools.definitions]).serialized(),
            stateless: JSONValue.object(cacheHints.merging(["tools": tools.definitions]) { $1 }).serialized())
    }

    /// The listing, shared by the copies of the dispatcher (it is a value) and replaced under a lock.
    private final class SharedListing: Sendable {
        private let state: Mutex<Listing>
        init(_ listing: Listing) { state = Mutex(listing) }
        var current: Listing {
            get { state.withLock { $0 } }
            set { state.withLock { $0 = newValue } }
        }
    }

    /// The answer to `request`, made as `revision` specifies, for `caller`.
    func answer(_ request: JSONRPCRequest, revision: ProtocolRevision, caller: MCPCaller) async -> JSONRPCOutcome {
        let stateless = revision.isStateless
        switch request.method {
        case "tools/call":
            return await callTool(request, stateless: stateless, caller: caller)
        case "tools/list":
            if let cursor = request.params["cursor"], cursor != .null {
                return .error(.invalidParams("Unknown cursor: the tool list has a single page", id: request.id))
            }
            let listing = listing.current
            guard listing.tools.policy != nil else { return .encoded(stateless ? listing.stateless : listing.session) }
            // With a tool policy the list is the caller's own: no shared cache may keep it.
            let visible = listing.tools.definitions(for: caller.toolCaller(trace: nil))
            guard stateless else { return .encoded(JSONValue.object(["tools": visible]).serialized()) }
            return .encoded(
                JSONValue.object([
                    "resultType": "complete", "_meta": server.resultMeta,
                    "ttlMs": .integer(cacheLifetimeMilliseconds), "cacheScope": "private", "tools": visible,
                ]).serialized())
        case "ping" where !stateless:
            return .result([:])
        case "server/discover" where stateless:
            return .encoded(discovery)
        case "initialize":
            return .error(
                .invalidRequest(
                    stateless
                        ? "initialize is not part of MCP 2026-07-28: send requests directly, with _meta"
                        : "This session is already initialized; to start another, send initialize without Mcp-Session-Id",
                    id: request.id))
        default:
            return .error(.methodNotFound(request.method, id: request.id))
        }
    }

    private func callTool(_ request: JSONRPCRequest, stateless: Bool, caller: MCPCaller) async -> JSONRPCOutcome {
        guard case .string(let name)? = request.params["name"] else {
            return .error(.invalidParams("tools/call needs the tool's name (params.name, a string)", id: request.id))
        }
        let arguments: [String: JSONValue]
        switch request.params["arguments"] {
        case nil, .null?: arguments = [:]
        case .object(let members)?: arguments = members
        default: return .error(.invalidParams("params.arguments must be an object", id: request.id))
        }
        let trace = RequestEnvelope.traceContext(of: request.params)
        do {
            let result = try await tools.call(
                name, arguments: ToolArguments(arguments), caller: caller.toolCaller(trace: trace))
            if result.signInRequired { return .error(.signInRequired(result.text, id: request.id)) }
            return .encoded(result.encoded(extra: stateless ? statelessResultMembers : []))
        } catch {
            return .error(.invalidParams(error.message, id: request.id))
        }
    }

    /// The `InitializeResult` for a client that asked for `requested`, and the revision the session will speak.
    func initializeResult(requested: String) -> (ProtocolRevision, JSONValue) {
        let revision = ProtocolRevision.negotiated(forInitialize: requested)
        return (
            revision,
            [
                "protocolVersion": .string(revision.rawValue), "capabilities": server.capabilities,
                "serverInfo": server.serverInfo, "instructions": .string(server.instructions),
            ]
        )
    }

    /// The `notifications/subscriptions/acknowledged` that opens a `subscriptions/listen` stream, with the
    /// notification types the gateway will send: `toolsListChanged` when the client asked for it and the tools can
    /// change (``ServerDescription/toolsCanChange``), else none. (Resources and prompts it does not have.)
    func acknowledgement(of id: JSONRPCID, toolsListChanged: Bool) -> [UInt8] {
        let notifications: JSONValue = toolsListChanged && server.toolsCanChange ? ["toolsListChanged": true] : [:]
        return JSONValue.object([
            "jsonrpc": "2.0", "method": "notifications/subscriptions/acknowledged",
            "params": ["_meta": ["io.modelcontextprotocol/subscriptionId": id.json], "notifications": notifications],
        ]).serialized()
    }

    /// `notifications/tools/list_changed`; on a `subscriptions/listen` stream, naming its subscription.
    static func toolListChanged(subscription: JSONRPCID?) -> [UInt8] {
        var message: [String: JSONValue] = ["jsonrpc": "2.0", "method": "notifications/tools/list_changed"]
        if let subscription { message["params"] = ["_meta": ["io.modelcontextprotocol/subscriptionId": subscription.json]] }
        return JSONValue.object(message).serialized()
    }

    /// The result that ends a `subscriptions/listen` stream gracefully (the gateway is shutting down).
    func subscriptionEnd(of id: JSONRPCID) -> [UInt8] {
        var meta = server.resultMeta.objectValue ?? [:]
        meta["io.modelcontextprotocol/subscriptionId"] = id.json
        return JSONRPCResponse.result(id: id, ["resultType": "complete", "_meta": .object(meta)])
    }
}
