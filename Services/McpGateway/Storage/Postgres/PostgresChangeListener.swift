import Foundation
import Logging
import PostgresNIO
import Resilience
import ServiceLifecycle
import Synchronization

/// Listens on ``PostgresDatabaseClient/changeChannel`` and announces what every instance writes on this instance's
/// ``GrantChangeFeed``: a grant revoked on one instance is dropped from the others' caches as soon as its transaction
/// commits.
///
/// `NOTIFY` is not stored: what is sent while nobody listens is lost. So:
/// - While not listening, the feed is incomplete: caches keep serving what they hold until it expires (seconds), but
///   take nothing new. Once `LISTEN` is back, they are emptied, so a revocation made meanwhile is never missed.
/// - The listener has a connection of its own, outside the pool, and reconnects within a second of losing it: it does
///   not wait for the pool's back-off, nor for a free connection.
/// - A connection can die without a word (a network partition, a firewall dropping idle flows). Every ``heartbeat``
///   the listener sends itself a `NOTIFY` through the pool; one that does not come back within the next heartbeat
///   means the connection is dead, and it is replaced.
struct PostgresChangeListener: Service {
    let database: PostgresDatabaseClient
    let connection: PostgresConnection.Configuration
    let changes: GrantChangeFeed
    var heartbeat: Duration = .seconds(5)

    /// Notifications of this prefix are heartbeats, not changes (``GrantChange`` ignores them).
    static let heartbeatPrefix = "p:"

    func run() async throws {
        await cancelWhenGracefulShutdown {
            var delay: Duration = .milliseconds(100)
            var connectionID = 0
            while !Task.isCancelled {
                let started = ContinuousClock.now
                connectionID += 1
                do {
                    try await listen(connectionID: connectionID)
                } catch ListenerError.heartbeatLost(let payload) where !Task.isCancelled {
                    // The connection was dead for a heartbeat or two already: what it should have delivered
                    // meanwhile is lost, so caches forget everything now rather than when it is back.
                    changes.publish(.unknown)
                    database.logger.warning(
                        "Not listening for other instances' revocations; tokens are not cached until it is back",
                        metadata: ["error": "\(ListenerError.heartbeatLost(payload))", "retry.delay": "\(delay)"])
                } catch where !Task.isCancelled {
                    database.logger.warning(
                        "Not listening for other instances' revocations; tokens are not cached until it is back",
                        metadata: ["error": "\(String(reflecting: error))", "retry.delay": "\(delay)"])
                } catch {}
                changes.setComplete(false)
                // A connection that lasted a while was fine: retry soon again.
                if ContinuousClock.now - started > .seconds(30) { delay = .milliseconds(100) }
                try? await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(1))
            }
        }
    }

    private func listen(connectionID: Int) async throws {
        let (configuration, logger, timeout) = (connection, database.logger, database.timeouts.call)
        let connection = try await PostgresConnection.connect(
            configuration, id: connectionID, within: timeout, logger: logger)
        let beats = Heartbeats()
        do {
            try await listen(on: connection, beats: beats)
        } catch {
            try? await connection.close()
            throw error
        }
        try? await connection.close()
    }

    private func listen(on connection: PostgresConnection, beats: Heartbeats) async throws {
        let logger = database.logger
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                try await connection.listen(on: PostgresDatabaseClient.changeChannel) { notifications in
                    // Listening from now on: what was cached while not listening may hide a missed revocation.
                    changes.setComplete(true)
                    logger.debug("Listening for other instances' changes")
                    for try await notification in notifications {
                        if notification.payload.hasPrefix(Self.heartbeatPrefix) {
                            beats.received(notification.payload)
                        } else if let change = GrantChange(notificationPayload: notification.payload) {
                            changes.publish(change)
                        }
                    }
                }
            }
            group.addTask {
                while true {
                    try await Task.sleep(for: heartbeat)
                    if let missed = beats.unanswered() {
                        throw ListenerError.heartbeatLost(missed)
                    }
                    let payload = beats.next()
                    // Sent through the pool: a database that is down fails here, and nothing is awaited then.
                    if (try? await database.query(
                        "SELECT pg_notify(\(PostgresDatabaseClient.changeChannel), \(payload))")) != nil
                    {
                        beats.sent(payload)
                    }
                }
            }
            // Either ends only by failing: the connection ended, or its heartbeat did not come back. Closing the
            // connection ends the other (PostgresNIO's notification sequence does not end on cancellation alone).
            defer { connection.discard() }
            try await group.next()
            group.cancelAll()
        }
    }

    enum ListenerError: Error, CustomStringConvertible {
        case heartbeatLost(String)

        var description: String {
            switch self {
            case .heartbeatLost(let payload):
                "the listening connection did not receive its own heartbeat \(payload): it is replaced"
            }
        }
    }
}

/// The heartbeats one listening connection sent and received.
private final class Heartbeats: Sendable {
    private struct State {
        var number = 0
        var pending: String?
        var lastReceived: String?
    }

    private let id = UUID().uuidString.prefix(8)
    private let state = Mutex(State())

    /// The payload of the next heartbeat.
    func next() -> String {
        state.withLock { state in
            state.number += 1
            return "\(PostgresChangeListener.heartbeatPrefix)\(id).\(state.number)"
        }
    }

    /// `payload` was sent (its transaction committed): it is awaited, unless it came back already.
    func sent(_ payload: String) {
        state.withLock { state in if state.lastReceived != payload { state.pending = payload } }
    }

    /// A heartbeat came back. Other instances' heartbeats (same channel, another id) are not ours to count.
    func received(_ payload: String) {
        guard payload.hasPrefix("\(PostgresChangeListener.heartbeatPrefix)\(id).") else { return }
        state.withLock { state in
            state.lastReceived = payload
            if state.pending == payload { state.pending = nil }
        }
    }

    /// The heartbeat sent one period ago that has not come back, if any.
    func unanswered() -> String? { state.withLock { $0.pending } }
}
