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
    }

    private struct Health {
        /// When calls began to fail for want of a connection, and none has succeeded since.
        var failingSince: ContinuousClock.Instant?
        var replacements = 0
    }

    private let configuration: PostgresClient.Configuration
    private let logger: Logger
    private let running: Mutex<Running>
    private let health = Mutex(Health())

    /// Creates the pool and starts running it.
    init(configuration: PostgresClient.Configuration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        running = Mutex(Self.start(configuration, logger: logger))
    }

    private static func start(_ configuration: PostgresClient.Configuration, logger: Logger) -> Running {
        let client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        return Running(client: client, run: Task { await client.run() })
    }

    /// The pool to lease connections from now.
    var client: PostgresClient { running.withLock { $0.client } }

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
            running = Self.start(configuration, logger: logger)
            return old
        }
        health.withLock { health in
            health.failingSince = nil
            health.replacements += 1
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
                if let since = pool.failingSince, ContinuousClock.now - since >= interval {
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
            try await Deadline.run(within: .seconds(1), operation: "PostgreSQL pool probe") {
                for try await _ in try await client.query("SELECT 1", logger: logger) {}
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
