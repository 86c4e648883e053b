import Foundation
import JWTAuth
import Logging
import ServiceSupport
import Synchronization

/// The MCP sessions this instance holds, bounded in total and per user.
///
/// - A session's id carries the session (``SessionIDs``): a Streamable HTTP session opened on another instance is
///   taken up here on its first request, and one whose state this instance dropped is rebuilt.
/// - A user at their limit who opens another session retires (ends) their own least recently used one.
/// - A gateway at its limit refuses new sessions (``Full``: 503 with `Retry-After`) rather than end another user's.
/// - The state of sessions idle for longer than the idle timeout is dropped by ``SessionSweeper`` (a session with an
///   open event stream is in use); the session itself lasts until `DELETE` or the end of its lifetime.
/// - A session ended here (`DELETE`, a retirement, a stalled stream) is refused here until its id would expire (at
///   most ``endedCapacity`` ids are remembered).
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
        /// Ids of sessions ended here (`DELETE`, a retirement, a stalled stream), until their lifetime would have
        /// ended, and the order they ended in.
        var ended: [String: Date] = [:]
        var endedOrder: [String] = []
        var endedHead = 0

        /// Remembers `id` as ended, keeping at most `capacity` ids: beyond, the longest ended is forgotten first, in
        /// constant time (a user who opens sessions in a loop must not make every request wait on this lock).
        mutating func markEnded(_ id: String, until expiry: Date, capacity: Int) {
            while ended.count >= capacity, endedHead < endedOrder.count {
                ended.removeValue(forKey: endedOrder[endedHead])
                endedHead += 1
            }
            if endedHead > capacity {
                endedOrder.removeFirst(endedHead)
                endedHead = 0
            }
            ended[id] = expiry
            endedOrder.append(id)
        }

        /// Forgets the ended ids whose lifetime is over.
        mutating func forgetExpired(now: Date) {
            ended = ended.filter { $0.value > now }
            endedOrder = endedOrder[endedHead...].filter { ended[$0] != nil }
            endedHead = 0
        }

        mutating func insert(_ session: MCPSession, limits: Limits, endedCapacity: Int) throws(Full) -> MCPSession? {
            var retired: MCPSession?
            let owned = byOwner[session.owner] ?? []
            if owned.count >= limits.maximumPerUser,
                let oldest = owned.compactMap({ sessions[$0] }).min(by: { $0.lastUsed < $1.lastUsed })
            {
                retired = remove(oldest.id)
                if let retired { markEnded(retired.id, until: retired.expiresAt, capacity: endedCapacity) }
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
    let endedCapacity: Int

    init(limits: Limits, ids: SessionIDs, clock: any WallClock, logger: Logger, endedCapacity: Int = 100_000) {
        self.limits = limits
        self.endedCapacity = endedCapacity
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
            try state.insert(session, limits: limits, endedCapacity: endedCapacity)
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
            do {
                return .adopted(retired: try state.insert(session, limits: limits, endedCapacity: endedCapacity))
            } catch { return .refused }
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

    /// `DELETE`: ends `owner`'s session `id`, whether or not this instance holds it, without taking it up first (which
    /// could retire another of the user's sessions). `false` when the id is not a live session of `owner`.
    func end(id: String, owner: String) -> Bool {
        let now = clock.now
        if let held = state.withLock({ $0.sessions[id] }) {
            // An /sse session ends with its stream, not with a DELETE on /mcp.
            guard held.owner == owner, !held.isClosed, held.transport == .streamableHTTP else { return false }
            close(id, reason: "the client ended it")
            return true
        }
        guard let contents = ids.open(id, owner: owner, now: now), contents.transport == .streamableHTTP else {
            return false
        }
        return state.withLock { state in
            guard state.ended[id] == nil else { return false }
            state.markEnded(
                id, until: contents.issuedAt.addingTimeInterval(ids.lifetime), capacity: endedCapacity)
            return true
        }
    }

    /// Ends a session here (`DELETE`, the end of its `/sse` stream, a stalled stream): it is closed, and its id is
    /// refused on this instance from now on.
    func close(_ id: String, reason: String) {
        let session = state.withLock { state -> MCPSession? in
            guard let session = state.remove(id) else { return nil }
            state.markEnded(id, until: session.expiresAt, capacity: endedCapacity)
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
            state.forgetExpired(now: now)
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

    /// The event streams sessions have open now: where a server notification reaches them.
    var openStreams: [EventStream] { state.withLock { $0.sessions.values.map { $0 } }.compactMap(\.stream) }

    /// Ids remembered as ended; for tests.
    var endedCount: Int { state.withLock { $0.ended.count } }

    func count(of owner: String) -> Int { state.withLock { $0.byOwner[owner]?.count ?? 0 } }
}
