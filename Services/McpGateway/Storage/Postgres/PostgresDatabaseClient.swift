import Foundation
import Logging
import PostgresNIO
import Resilience
import Synchronization
// `ConnectionPoolError`, which PostgresNIO's pool throws as it is (circuit breaker tripped, pool shut down).
import _ConnectionPoolModule

/// PostgresNIO's connection pool as the stores use it: every call (waiting for a connection, its statements, its
/// transaction) under one deadline of our own, `GATEWAY_DATABASE_TIMEOUT`.
///
/// - The deadline does not trust the driver (``Deadline``): when it passes, the caller gets ``DependencyUnavailable``
///   at once, and the connection the call was using is closed, so that the pool discards it instead of lending it
///   again in an unknown state. A call still waiting for a connection just stops waiting.
/// - The server enforces its own, shorter limits on every connection (`statement_timeout`, `lock_timeout`,
///   `idle_in_transaction_session_timeout`): a slow statement or a held lock ends with a clean error that leaves the
///   connection usable, before the client's deadline has to discard it.
/// - What means "try again later" (a timeout, a connection refused or closed, the server shutting down, too many
///   connections, a lock or statement timeout, a deadlock) is thrown as ``DependencyUnavailable``, which HTTP renders
///   as a 503 with `Retry-After`; anything else (a constraint, a bug) is thrown as it is.
struct PostgresDatabaseClient: Sendable {
    let pool: PostgresPool
    let logger: Logger
    let timeouts: DatabaseTimeouts
    private let prepared = PreparedConnections()

    /// The channel writes are announced on with `NOTIFY`.
    static let changeChannel = "mcp_gateway_changes"

    init(pool: PostgresPool, logger: Logger, timeouts: DatabaseTimeouts = DatabaseTimeouts()) {
        self.pool = pool
        self.logger = logger
        self.timeouts = timeouts
    }

    /// One statement outside a transaction; timed into `gateway_database_operation_duration_seconds`.
    @discardableResult
    func query(_ query: PostgresQuery, file: String = #fileID, line: Int = #line) async throws -> PostgresRows {
        try await withSession("query") { session in try await session.query(query, file: file, line: line) }
    }

    /// `body` in one transaction: committed when it returns, rolled back when it throws; timed.
    ///
    /// Not PostgresNIO's `withTransaction`: its `ROLLBACK` after a failure is sent even on a connection that has
    /// closed, where it never returns (``PostgresSession``).
    ///
    /// - Parameter timeout: Instead of ``DatabaseTimeouts/call``, for the rare transaction that may take long (a
    ///   migration).
    func transaction<Result: Sendable>(
        timeout: Duration? = nil, _ body: @escaping @Sendable (PostgresSession) async throws -> Result
    ) async throws -> Result {
        try await withSession("transaction", timeout: timeout) { session in
            try await session.query("BEGIN")
            let result: Result
            do {
                result = try await body(session)
            } catch {
                if !session.isClosed {
                    do { try await session.query("ROLLBACK") } catch {
                        // A connection left inside a failed transaction must not go back to the pool.
                        session.discard()
                    }
                }
                throw error
            }
            try await session.query("COMMIT")
            return result
        }
    }

    /// A pooled connection for `body`, within ``DatabaseTimeouts/call``.
    func withSession<Result: Sendable>(
        _ operation: String, timeout: Duration? = nil,
        _ body: @escaping @Sendable (PostgresSession) async throws -> Result
    ) async throws -> Result {
        let started = ContinuousClock.now
        defer { Self.record(operation, since: started) }
        let inUse = ConnectionInUse()
        let (current, logger, prepared, timeouts) = (pool.current, logger, prepared, timeouts)
        do {
            let result = try await Deadline.run(
                within: timeout ?? timeouts.call, operation: "PostgreSQL \(operation)",
                onTimeout: { inUse.discard() }
            ) {
                // A connection the pool lent after it had closed (the pool hears of a close late) is given back and
                // another taken, once: nothing was sent on it.
                for attempt in 1...2 {
                    do {
                        return try await current.client.withConnection { connection in
                            try await Self.use(connection, inUse: inUse, logger: logger) { session in
                                try await prepared.prepare(session, pool: current.generation, timeouts: timeouts)
                                return try await body(session)
                            }
                        }
                    } catch PostgresSessionError.closedBeforeUse where attempt == 1 {
                        continue
                    }
                }
                throw PostgresSessionError.connectionClosed
            }
            pool.recordSuccess()
            return result
        } catch {
            if let unavailable = Self.unavailable(error) {
                GatewayMetrics.dependencyFailure(.database, timedOut: error is DeadlineExceeded)
                // Only a connection that failed says the pool may be stuck: a deadline spent waiting for a busy
                // pool, or a statement the server ended at its limit, does not (``PostgresPoolSupervisor``).
                if Self.isConnectionFailure(error) { pool.recordConnectionFailure() }
                throw unavailable
            }
            throw error
        }
    }

    /// Runs `body` on a leased connection. A connection that failed in a way that ends it (closed under the call, a
    /// connection error, the server terminating it) is closed, and its close awaited, before it goes back: the pool
    /// learns of a close only when it completes, and would otherwise lend it again.
    private static func use<Result: Sendable>(
        _ connection: PostgresConnection, inUse: ConnectionInUse, logger: Logger,
        _ body: (PostgresSession) async throws -> Result
    ) async throws -> Result {
        // Leased after the deadline had passed: the connection is fine, and goes back to the pool.
        guard inUse.begin(connection) else { throw CancellationError() }
        defer { inUse.end() }
        let session = PostgresSession(connection: connection, logger: logger)
        do {
            return try await body(session)
        } catch {
            if connection.isClosed || session.isDiscarded || endsConnection(error) {
                connection.discard()
                try? await connection.closeFuture.get()
            }
            throw error
        }
    }

    /// Errors after which a connection is not to be used again: it closed, or the server ended the session.
    private static func endsConnection(_ error: any Error) -> Bool {
        if error is PostgresSessionError { return true }
        guard let error = error as? PSQLError else { return false }
        guard error.code == .server else { return true }
        guard let state = error.serverInfo?[.sqlState] else { return false }
        return state.hasPrefix("08") || state.hasPrefix("57P")
    }

    private static func record(_ operation: String, since started: ContinuousClock.Instant) {
        GatewayMetrics.databaseOperation(
            backend: StorageBackend.postgresql.rawValue, operation: operation, duration: started.duration(to: .now))
    }

    /// SQLSTATEs after which the same call may succeed later: connection exceptions (08), insufficient resources (53),
    /// operator intervention (57: statement timeout, shutdown, cannot connect now), lock not available (55P03),
    /// transaction rollbacks (40: serialization failure, deadlock), and a read-only transaction (25006: a standby,
    /// during a failover).
    private static func isTransient(sqlState: String) -> Bool {
        ["08", "53", "57", "40"].contains(String(sqlState.prefix(2))) || sqlState == "55P03" || sqlState == "25006"
    }

    /// Whether `error` says connections fail: closed, refused, ended by the server, or the pool giving up on making
    /// them. Not a deadline (the pool may only be busy), nor a statement the server ended at its limit.
    private static func isConnectionFailure(_ error: any Error) -> Bool {
        switch error {
        case is PostgresSessionError, is ConnectionPoolError: return true
        case let error as PSQLError where error.code == .server:
            guard let state = error.serverInfo?[.sqlState] else { return false }
            return state.hasPrefix("08") || state.hasPrefix("57P") || state == "53300"
        case is PSQLError: return true
        default: return false
        }
    }

    /// `error` as ``DependencyUnavailable`` when it means "the database cannot serve this now"; `nil` otherwise.
    static func unavailable(_ error: any Error) -> DependencyUnavailable? {
        switch error {
        case let error as DeadlineExceeded:
            return DependencyUnavailable("the database", detail: error.description)
        case let error as PostgresSessionError:
            return DependencyUnavailable("the database", detail: error.description)
        case let error as PSQLError where error.code == .server:
            guard let state = error.serverInfo?[.sqlState], isTransient(sqlState: state) else { return nil }
            return DependencyUnavailable(
                "the database", detail: "PostgreSQL answered \(state): \(error.serverInfo?[.message] ?? "")")
        case let error as PSQLError:
            let cause = error.underlying.map { ": \($0)" } ?? ""
            return DependencyUnavailable("the database", detail: "PostgreSQL connection failed (\(error.code))\(cause)")
        case let error as ConnectionPoolError:
            return DependencyUnavailable(
                "the database", detail: "PostgreSQL's connection pool cannot serve (\(error)): no connection can be made")
        default:
            return nil
        }
    }
}

/// `GATEWAY_DATABASE_TIMEOUT` and the server-side limits derived from it.
struct DatabaseTimeouts: Sendable, Equatable {
    /// How long one database call may take, waiting for a connection included. Default 5 s.
    var call: Duration = .seconds(5)

    /// `statement_timeout`: four fifths of ``call``, so that the server cancels a slow statement (and the connection
    /// stays usable) before the client's deadline has to discard the connection.
    var statement: Duration { call * 4 / 5 }
    /// `lock_timeout`: half of ``call``; waiting for a row or table lock ends with a clean error.
    var lock: Duration { call / 2 }
    /// `idle_in_transaction_session_timeout`: a transaction its client abandoned (a process that died in the middle)
    /// releases its locks after twice ``call``.
    var idleInTransaction: Duration { call * 2 }
}

extension Duration {
    /// Whole milliseconds, as PostgreSQL's time settings take them.
    var postgresMilliseconds: String { String(Int64(self / .milliseconds(1))) }
}

/// Sets the server-side limits on each connection the first time it is lent. With `SET`, not as startup parameters:
/// a session-pooling PgBouncer refuses startup parameters it does not know.
private final class PreparedConnections: Sendable {
    /// A connection is known by its pool (each ``PostgresPool`` replacement numbers connections from 0 again) and its
    /// id.
    private struct Key: Hashable {
        let pool: Int
        let connection: PostgresConnection.ID
    }

    private let ids = Mutex(Set<Key>())

    func prepare(_ session: PostgresSession, pool: Int, timeouts: DatabaseTimeouts) async throws {
        let id = Key(pool: pool, connection: session.connection.id)
        if ids.withLock({ $0.contains(id) }) { return }
        try await session.query(
            """
            SELECT set_config('statement_timeout', \(timeouts.statement.postgresMilliseconds), false),
              set_config('lock_timeout', \(timeouts.lock.postgresMilliseconds), false),
              set_config('idle_in_transaction_session_timeout', \(timeouts.idleInTransaction.postgresMilliseconds), false)
            """)
        ids.withLock { ids in
            // A pool never reuses a connection id; forgetting them all only sets the limits again.
            if ids.count >= 4096 { ids.removeAll() }
            ids.insert(id)
        }
    }
}

/// The connection one call is using, so that its deadline can close it.
private final class ConnectionInUse: Sendable {
    private struct State {
        var connection: PostgresConnection?
        var discarded = false
    }

    private let state = Mutex(State())

    /// `false` when the deadline passed before the connection was lent.
    func begin(_ connection: PostgresConnection) -> Bool {
        state.withLock { state in
            guard !state.discarded else { return false }
            state.connection = connection
            return true
        }
    }

    func end() { state.withLock { $0.connection = nil } }

    /// The deadline passed: closes the connection in use, which fails what is pending on it; the pool drops it.
    func discard() {
        let connection = state.withLock { state in
            state.discarded = true
            defer { state.connection = nil }
            return state.connection
        }
        connection?.discard()
    }
}

extension PostgresConnection {
    /// Closes the connection without waiting: what is pending on it fails, and the pool replaces it. The connection is
    /// kept alive until it has closed (PostgresNIO asserts that none is released open).
    func discard() {
        let closed: EventLoopFuture<Void> = close()
        closed.whenComplete { _ in withExtendedLifetime(self) {} }
    }

    /// A connection of its own (outside any pool), opened within `timeout`, the server's answer to the start-up
    /// included: PostgresNIO's `connectTimeout` covers the TCP connection only. One opened after the deadline is closed.
    static func connect(
        _ configuration: PostgresConnection.Configuration, id: Int, within timeout: Duration, logger: Logger
    ) async throws -> PostgresConnection {
        try await Deadline.run(
            within: timeout, operation: "connecting to PostgreSQL", discardLate: { $0.discard() }
        ) {
            try await PostgresConnection.connect(configuration: configuration, id: id, logger: logger)
        }
    }
}
