import Foundation
import JWTAuth
import Logging
import ServiceSupport
import Synchronization

/// The live MCP sessions, bounded in total and per user.
///
/// - A user at their limit who opens another session retires their own least recently used one.
/// - A gateway at its limit refuses new sessions (``Full``: 503 with `Retry-After`) rather than end another user's.
/// - Sessions idle for longer than the idle timeout are closed by ``SessionSweeper``; a session with an open event
///   stream is in use.
///
/// Every operation is one critical section, so concurrent `initialize` requests cannot overshoot the limits.
final class SessionRegistry: Sendable {
    struct Limits: Sendable {
        var idleTimeout: TimeInterval
        var maximum: Int
        var maximumPerUser: Int
    }

    /// The gateway holds ``Limits/maximum`` sessions.
    struct Full: Error {}

    private struct State {
        var sessions: [String: MCPSession] = [:]
        var byOwner: [String: Set<String>] = [:]

        mutating func remove(_ id: String) -> MCPSession? {
            guard let session = sessions.removeValue(forKey: id) else { return nil }
            byOwner[session.owner]?.remove(id)
            if byOwner[session.owner]?.isEmpty == true { byOwner[session.owner] = nil }
            return session
        }
    }

    let limits: Limits
    private let clock: any WallClock
    private let logger: Logger
    private let state = Mutex(State())

    init(limits: Limits, clock: any WallClock, logger: Logger) {
        self.limits = limits
        self.clock = clock
        self.logger = logger
    }

    /// Opens a session for `owner`.
    func open(owner: String, revision: ProtocolRevision, transport: MCPSession.Transport) throws(Full) -> MCPSession {
        let session = MCPSession(
            id: SecureRandom.token(), owner: owner, revision: revision, transport: transport, now: clock.now)
        let retired: MCPSession? = try state.withLock { (state: inout State) throws(Full) -> MCPSession? in
            var retired: MCPSession?
            let owned = state.byOwner[owner] ?? []
            if owned.count >= limits.maximumPerUser,
                let oldest = owned.compactMap({ state.sessions[$0] }).min(by: { $0.lastUsed < $1.lastUsed })
            {
                retired = state.remove(oldest.id)
            } else if state.sessions.count >= limits.maximum {
                throw Full()
            }
            state.sessions[session.id] = session
            state.byOwner[owner, default: []].insert(session.id)
            return retired
        }
        if let retired {
            retired.close(reason: "the user opened more than \(limits.maximumPerUser) sessions")
            logger.debug("MCP session retired", metadata: ["mcp.reason": "per-user limit"])
        }
        return session
    }

    /// The session `id` if `owner` opened it; marks it used.
    func session(id: String, owner: String) -> MCPSession? {
        guard let session = state.withLock({ $0.sessions[id] }), session.owner == owner, !session.isClosed else {
            return nil
        }
        session.touch(clock.now)
        return session
    }

    /// Forgets and closes a session (`DELETE`, the end of its `/sse` stream, expiry).
    func close(_ id: String, reason: String) {
        guard let session = state.withLock({ $0.remove(id) }) else { return }
        session.close(reason: reason)
        logger.debug("MCP session closed", metadata: ["mcp.reason": "\(reason)"])
    }

    /// Closes the sessions idle for longer than the idle timeout; returns how many.
    @discardableResult
    func closeIdle() -> Int {
        let cutoff = clock.now.addingTimeInterval(-limits.idleTimeout)
        let idle = state.withLock { state in
            state.sessions.values.filter { $0.lastUsed < cutoff && !$0.isStreaming }.compactMap { state.remove($0.id) }
        }
        for session in idle { session.close(reason: "it was idle") }
        return idle.count
    }

    /// Closes every session (graceful shutdown).
    func closeAll() {
        let all = state.withLock { state in
            defer { state = State() }
            return Array(state.sessions.values)
        }
        for session in all { session.close(reason: "the gateway is stopping") }
    }

    var count: Int { state.withLock { $0.sessions.count } }

    func count(of owner: String) -> Int { state.withLock { $0.byOwner[owner]?.count ?? 0 } }
}
