import Foundation
import Logging
import PostgresNIO
import Resilience
import ServiceLifecycle
import Synchronization

/// The gateway's PostgresNIO connection pool, which ``PostgresPoolSupervisor`` replaces with a fresh one when it keeps
/// failing after the server is back.
///
/// Why replace it: after failed connection attempts, PostgresNIO's pool waits before the next one, longer each time
/// (100 ms × 1.25ⁿ, up to a minute), and meanwhile fails or queues every request. After an outage of a minute, a
/// server that is back can go unused for tens of seconds. A fresh pool connects at once.
final class PostgresPool: Sendable {
    private struct Running {
        let client: PostgresClient
        let run: Task<Void, Never>
        /// Which pool this is: 0, then one more at each replacement.
        let generation: Int
    }

    private struct Health {
        /// When calls began to fail for want of a connection, and none has succeeded since.
        var failingSince: ContinuousClock.Instant?
        var replacements = 0
        var lastReplacement: ContinuousClock.Instant?
    }

    private let configuration: PostgresClient.Configuration
    private let logger: Logger
    private let running: Mutex<Running>
    private let health = Mutex(Health())

    /// Creates the pool and starts running it.
    init(configuration: PostgresClient.Configuration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        running = Mutex(Self.start(configuration, generation: 0, logger: logger))
    }

    private static func start(_ configuration: PostgresClient.Configuration, generation: Int, logger: Logger)
        -> Running
    {
        let client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        return Running(client: client, run: Task { await client.run() }, generation: generation)
    }

    /// The pool to lease connections from now.
    var client: PostgresClient { running.withLock { $0.client } }

    /// The pool to lease connections from now, and which one it is.
    var current: (client: PostgresClient, generation: Int) {
        running.withLock { ($0.client, $0.generation) }
    }

    /// Whether a replacement happened less than `interval` ago: replacements are spaced, so that a server that
    /// accepts connections but cannot serve them is not answered with a new pool every second.
    func replacedRecently(within interval: Duration) -> Bool {
        health.withLock { health in
            guard let last = health.lastReplacement else { return false }
            return ContinuousClock.now - last < interval
        }
    }

    /// How many times the pool was replaced (tests, logs).
    var replacements: Int { health.withLock { $0.replacements } }

    /// Since when calls have failed to get a working connection, if they do now.
    var failingSince: ContinuousClock.Instant? { health.withLock { $0.failingSince } }

    /// A call got no working connection (refused, closed, timed out waiting).
    func recordConnectionFailure() {
        health.withLock { health in
            if health.failingSince == nil { health.failingSince = .now }
        }
    }

    /// A call succeeded.
    func recordSuccess() {
        health.withLock { health in
            if health.failingSince != nil { health.failingSince = nil }
        }
    }

    /// Starts a fresh pool; the old one shuts down in the background (what it still holds fails).
    func replace() {
        let old = running.withLock { running in
            let old = running
            running = Self.start(configuration, generation: old.generation + 1, logger: logger)
            return old
        }
        health.withLock { health in
            health.failingSince = nil
            health.replacements += 1
            health.lastReplacement = .now
        }
        old.run.cancel()
    }

    /// Shuts the pool down, waiting up to `timeout` for it: a connection PostgresNIO never gives back (see
    /// ``PostgresSession``) must not keep the process from exiting.
    func close(timeout: Duration = .seconds(5)) async {
        let run = running.withLock { $0.run }
        run.cancel()
        _ = try? await Deadline.run(within: timeout, operation: "closing the PostgreSQL pool") { await run.value }
    }
}

/// Watches the pool while calls fail for want of a connection: once the server accepts a connection of its own again,
/// a pool that still fails is replaced. So service comes back within about a second of the server, however long it
/// was away.
struct PostgresPoolSupervisor: Service {
    let pool: PostgresPool
    let connection: PostgresConnection.Configuration
    let logger: Logger
    var interval: Duration = .seconds(1)

    func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try? await Task.sleep(for: interval)
                if let since = pool.failingSince, ContinuousClock.now - since >= interval,
                    !pool.replacedRecently(within: .seconds(30))
                {
                    await recoverIfServerIsBack()
                }
            }
        }
    }

    private func recoverIfServerIsBack() async {
        let (configuration, logger) = (connection, logger)
        // The server accepts a connection of our own...
        let reachable: Bool
        do {
            let probe = try await PostgresConnection.connect(configuration, id: 0, within: .seconds(3), logger: logger)
            try? await probe.close()
            reachable = true
        } catch {
            reachable = false
        }
        guard reachable, pool.failingSince != nil else { return }
        // ...and the pool, given a moment, still cannot serve: it is waiting out its back-off.
        let client = pool.client
        let served: Bool
        do {
            try await Deadline.run(within: .seconds(2), operation: "PostgreSQL pool probe") {
                try await client.withConnection { connection in
                    let session = PostgresSession(connection: connection, logger: logger)
                    try await session.query("SELECT 1")
                }
            }
            served = true
        } catch {
            served = false
        }
        if served {
            pool.recordSuccess()
        } else {
            logger.notice(
                "PostgreSQL accepts connections again but the pool still waits to retry; starting a fresh pool")
            pool.replace()
        }
    }
}
