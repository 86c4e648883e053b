import Foundation
import JWTAuth
import Logging
import MCP
import ServiceSupport

/// The live MCP sessions: id → (server, transport), bounded in total and per user, expired when idle.
///
/// The SDK's `StatefulHTTPServerTransport` serves one session, so the gateway keeps one server and transport per
/// session. A session is bound to the user who opened it: another user's token on it finds nothing (404).
actor SessionRegistry {
    struct Session: Sendable {
        let id: String
        let owner: String
        let server: Server
        let transport: StatefulHTTPServerTransport
        var lastUsed: Date
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

    /// Opens a session for `owner`, first closing their least recently used one when they are at their limit, or the
    /// least recently used of all when the gateway is.
    func open(owner: String) async throws -> Session {
        let owned = sessions.values.filter { $0.owner == owner }
        if owned.count >= limits.maximumPerUser, let oldest = owned.min(by: { $0.lastUsed < $1.lastUsed }) {
            await close(oldest.id, reason: "the user's session limit was reached")
        }
        if sessions.count >= limits.maximum, let oldest = sessions.values.min(by: { $0.lastUsed < $1.lastUsed }) {
            await close(oldest.id, reason: "the gateway's session limit was reached")
        }
        let id = SecureRandom.token()
        let (server, transport) = try await factory.makeSession(id: id)
        let session = Session(id: id, owner: owner, server: server, transport: transport, lastUsed: clock.now)
        sessions[id] = session
        return session
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
