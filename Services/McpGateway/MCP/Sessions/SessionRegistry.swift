import Foundation
import JWTAuth
import Logging
import ServiceSupport
import Synchronization

/// The MCP sessions this instance holds, bounded in total and per user.
///
/// - A session's id carries the session (``SessionIDs``): a Streamable HTTP session opened on another instance is
///   taken up here on its first request, and one whose state this instance dropped is rebuilt.
/// - A user at their limit who opens another session retires their own least recently used one.
/// - A gateway at its limit refuses new sessions (``Full``: 503 with `Retry-After`) rather than end another user's.
/// - The state of sessions idle for longer than the idle timeout is dropped by ``SessionSweeper`` (a session with an
///   open event stream is in use); the session itself lasts until `DELETE` or the end of its lifetime.
/// - A session ended here (`DELETE`, a retirement, a stalled stream) is refused here until its id would expire.
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
        /// Ids of sessions ended here, until their lifetime would have ended.
        var ended: [String: Date] = [:]

        mutating func insert(_ session: MCPSession, limits: Limits) throws(Full) -> MCPSession? {
            var retired: MCPSession?
            let owned = byOwner[session.owner] ?? []
            if owned.count >= limits.maximumPerUser,
                let oldest = owned.compactMap({ sessions[$0] }).min(by: { $0.lastUsed < $1.lastUsed })
            {
                retired = remove(oldest.id)
                if let retired { ended[retired.id] = retired.expiresAt }
            } else if sessions.count >= limits.maximum {
                throw Full()
            }
            sessions[session.id] = session
            byOwner[session.owner, default: []].insert(session.id)
            return retired
        }

        mutating func remove(_ id: String) -> MCPSession? {
            guard let session = sessions.removeValue(forKey: id) else { return nil }
            byOwner[session.owner]?.remove(id)
            if byOwner[session.owner]?.isEmpty == true { byOwner[session.owner] = nil }
            return session
        }
    }

    let limits: Limits
    let ids: SessionIDs
    private let clock: any WallClock
    private let logger: Logger
    private let state = Mutex(State())
    /// Ended ids remembered at most; beyond, the ones closest to expiry are forgotten first.
    static let endedCapacity = 100_000

    init(limits: Limits, ids: SessionIDs, clock: any WallClock, logger: Logger) {
        self.limits = limits
        self.ids = ids
        self.clock = clock
        self.logger = logger
    }

    /// Opens a session for `owner`.
    func open(owner: String, revision: ProtocolRevision, transport: MCPSession.Transport) throws(Full) -> MCPSession {
        let now = clock.now
        let session = MCPSession(
            id: ids.make(owner: owner, revision: revision, transport: transport, now: now), owner: owner,
            revision: revision, transport: transport, now: now, expiresAt: now.addingTimeInterval(ids.lifetime))
        let retired = try state.withLock { (state: inout State) throws(Full) in
            try state.insert(session, limits: limits)
        }
        if let retired { retire(retired) }
        GatewayMetrics.sessionsOpen(count)
        return session
    }

    /// The session `id` if `owner` opened it and it has not ended; marks it used. A Streamable HTTP session this
    /// instance does not hold is rebuilt from its id.
    func session(id: String, owner: String) -> MCPSession? {
        let now = clock.now
        if let session = state.withLock({ $0.sessions[id] }) {
            guard session.owner == owner, !session.isClosed else { return nil }
            guard session.expiresAt > now else {
                close(id, reason: "its lifetime ended")
                return nil
            }
            session.touch(now)
            return session
        }
        guard let contents = ids.open(id, owner: owner, now: now), contents.transport == .streamableHTTP else {
            return nil
        }
        let session = MCPSession(
            id: id, owner: owner, revision: contents.revision, transport: contents.transport, now: now,
            expiresAt: contents.issuedAt.addingTimeInterval(ids.lifetime))
        enum Adoption {
            case refused
            case present(MCPSession)
            case adopted(retired: MCPSession?)
        }
        let adoption = state.withLock { (state: inout State) -> Adoption in
            guard state.ended[id] == nil else { return .refused }
            // Another request of the session may have taken it up meanwhile.
            if let existing = state.sessions[id] { return .present(existing) }
            do { return .adopted(retired: try state.insert(session, limits: limits)) } catch { return .refused }
        }
        switch adoption {
        case .refused: return nil
        case .present(let existing): return existing.owner == owner && !existing.isClosed ? existing : nil
        case .adopted(let retired):
            if let retired { retire(retired) }
            GatewayMetrics.sessionsOpen(count)
            return session
        }
    }

    private func retire(_ session: MCPSession) {
        session.close(reason: "the user opened more than \(limits.maximumPerUser) sessions")
        logger.debug("MCP session retired", metadata: ["mcp.reason": "per-user limit"])
    }

    /// Ends a session here (`DELETE`, the end of its `/sse` stream, a stalled stream): it is closed, and its id is
    /// refused on this instance from now on.
    func close(_ id: String, reason: String) {
        let session = state.withLock { state -> MCPSession? in
            guard let session = state.remove(id) else { return nil }
            if state.ended.count >= Self.endedCapacity {
                state.ended = state.ended.filter { $0.value > clock.now }
                if state.ended.count >= Self.endedCapacity,
                    let soonest = state.ended.min(by: { $0.value < $1.value })
                {
                    state.ended.removeValue(forKey: soonest.key)
                }
            }
            state.ended[id] = session.expiresAt
            return session
        }
        guard let session else { return }
        GatewayMetrics.sessionsOpen(count)
        session.close(reason: reason)
        logger.debug("MCP session closed", metadata: ["mcp.reason": "\(reason)"])
    }

    /// Drops the state of sessions idle for longer than the idle timeout, and forgets ended ids that expired;
    /// returns how many sessions' state went. An idle session's next request rebuilds it from its id.
    @discardableResult
    func closeIdle() -> Int {
        let now = clock.now
        let cutoff = now.addingTimeInterval(-limits.idleTimeout)
        let idle = state.withLock { state in
            state.ended = state.ended.filter { $0.value > now }
            return state.sessions.values.filter { $0.lastUsed < cutoff && !$0.isStreaming }
                .compactMap { state.remove($0.id) }
        }
        for session in idle { session.close(reason: "it was idle") }
        GatewayMetrics.sessionsOpen(count)
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
