import Foundation
import JWTAuth
import Logging
import MCP
import ServiceSupport

/// The live MCP sessions: id → (server, transport), bounded in total and per user, expired when idle.
///
/// The SDK's transports serve one session each, so the gateway keeps one server and transport per session, of either
/// transport: Streamable HTTP (`/mcp`) or the legacy HTTP+SSE (`/sse`). A session is bound to the user who opened it
/// and to its transport: another user's token, or the other transport's endpoint, finds nothing (404).
actor SessionRegistry {
    enum SessionTransport: Sendable {
        case streamableHTTP(StatefulHTTPServerTransport)
        case legacySSE(LegacySSETransport)
    }

    struct Session: Sendable {
        let id: String
        let owner: String
        let server: Server
        let transport: SessionTransport
        var lastUsed: Date

        var streamableHTTP: StatefulHTTPServerTransport? {
            if case .streamableHTTP(let transport) = transport { transport } else { nil }
        }
        var legacySSE: LegacySSETransport? {
            if case .legacySSE(let transport) = transport { transport } else { nil }
        }
    }

    private let factory: MCPServerFactory
    private let limits: SessionLimits
    private let clock: any WallClock
    private let logger: Logger
    private var sessions: [String: Session] = [:]

    init(factory: MCPServerFactory, limits: SessionLimits, clock: any WallClock, logger: Logger) {
        self.factory = factory
        self.limits = limits
        self.clock = clock
        self.logger = logger
    }

    /// Opens a Streamable HTTP session for `owner` (see ``open(owner:make:)``).
    func openStreamableHTTP(owner: String) async throws -> (Session, StatefulHTTPServerTransport) {
        let factory = self.factory
        return try await open(owner: owner) { id in
            let (server, transport) = try await factory.makeSession(id: id)
            return (server, .streamableHTTP(transport), transport)
        }
    }

    /// Opens a legacy HTTP+SSE session for `owner` (see ``open(owner:make:)``).
    func openLegacySSE(owner: String) async throws -> (Session, LegacySSETransport) {
        let factory = self.factory
        return try await open(owner: owner) { _ in
            let (server, transport) = try await factory.makeLegacySession()
            return (server, .legacySSE(transport), transport)
        }
    }

    /// Opens a session for `owner`, first closing their least recently used one when they are at their limit, or the
    /// least recently used of all when the gateway is.
    private func open<T: Sendable>(
        owner: String, make: @Sendable (String) async throws -> (Server, SessionTransport, T)
    ) async throws -> (Session, T) {
        let owned = sessions.values.filter { $0.owner == owner }
        if owned.count >= limits.maximumPerUser, let oldest = owned.min(by: { $0.lastUsed < $1.lastUsed }) {
            await close(oldest.id, reason: "the user's session limit was reached")
        }
        if sessions.count >= limits.maximum, let oldest = sessions.values.min(by: { $0.lastUsed < $1.lastUsed }) {
            await close(oldest.id, reason: "the gateway's session limit was reached")
        }
        let id = SecureRandom.token()
        let (server, transport, typed) = try await make(id)
        let session = Session(id: id, owner: owner, server: server, transport: transport, lastUsed: clock.now)
        sessions[id] = session
        return (session, typed)
    }

    /// The session `id` if `owner` opened it; marks it used.
    func session(id: String, owner: String) -> Session? {
        guard var session = sessions[id], session.owner == owner else { return nil }
        session.lastUsed = clock.now
        sessions[id] = session
        return session
    }

    /// Forgets and stops a session (after `DELETE`, on expiry, or on eviction).
    func close(_ id: String, reason: String = "the client ended it") async {
        guard let session = sessions.removeValue(forKey: id) else { return }
        logger.debug("MCP session closed", metadata: ["mcp.reason": "\(reason)"])
        await session.server.stop()
    }

    /// Closes sessions idle for longer than the idle timeout; returns how many.
    func closeIdle() async -> Int {
        let cutoff = clock.now.addingTimeInterval(-limits.idleTimeout)
        let idle = sessions.values.filter { $0.lastUsed < cutoff }.map(\.id)
        for id in idle { await close(id, reason: "it was idle") }
        return idle.count
    }

    /// Closes every session (graceful shutdown).
    func closeAll() async {
        for id in Array(sessions.keys) { await close(id, reason: "the gateway is stopping") }
    }

    var count: Int { sessions.count }
}
