import Foundation
import Logging
import PostgresNIO
import Resilience
import Testing

@testable import McpGateway

/// PostgresNIO 1.33.2 never answers a statement written to a connection whose channel NIO has torn down
/// (docs/postgresnio-hang.md): these tests pin that behaviour of the dependency, and prove the gateway's workaround
/// (``PostgresSession``, ``PostgresDatabaseClient``) against the same faults.
///
/// The first two tests assert the bug. When an upgrade of PostgresNIO fixes it, they fail: then the workaround can be
/// simplified, and these tests turned around.
///
/// Timing relied on: a query on loopback answers within milliseconds, so "not finished within 1 s" means lost; and
/// `closeFuture` completes only after NIO has removed the channel's handlers.
@Suite(.enabled(if: StoreBackend.postgresURL != nil, "needs GATEWAY_TEST_DATABASE_URL"), .serialized)
struct PostgresNIOHangTests {
    let logger = Logger(label: "test.postgresnio-hang")

    func location() throws -> PostgresLocation { try PostgresLocation(url: try #require(StoreBackend.postgresURL)) }

    /// Ends `pid`'s session from a connection of its own (the test database's role is a superuser).
    func terminate(_ pid: Int32) async throws {
        let admin = try await PostgresConnection.connect(
            configuration: try location().connectionConfiguration(), id: 99, logger: logger)
        _ = try await admin.query("SELECT pg_terminate_backend(\(pid))", logger: logger).get()
        try await admin.close()
    }

    /// The process running `sql` now, polled from a connection of its own.
    func pid(running sql: String) async throws -> Int32 {
        let admin = try await PostgresConnection.connect(
            configuration: try location().connectionConfiguration(), id: 98, logger: logger)
        defer { Task { try? await admin.close() } }
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            let rows = try await admin.query(
                "SELECT pid FROM pg_stat_activity WHERE query = \(sql) AND state = 'active'", logger: logger
            ).get().rows
            if let row = rows.first { return try row.decode(Int32.self) }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw CancellationError()
    }

    /// Whether `work` ends (returns or throws) within `limit`. One that does not is left behind: nothing ends it.
    func completes(within limit: Duration, _ work: @escaping @Sendable () async throws -> Void) async -> Bool {
        do {
            try await Deadline.run(within: limit, operation: "the test's call") {
                do { try await work() } catch {}
            }
            return true
        } catch {
            return false
        }
    }

    @Test func aStatementOnAConnectionTheServerClosedIsNeverAnswered() async throws {
        let connection = try await PostgresConnection.connect(
            configuration: try location().connectionConfiguration(), id: 1, logger: logger)
        let pid = try await connection.query("SELECT pg_backend_pid()", logger: logger).get().rows.first
        try await terminate(try #require(pid).decode(Int32.self))
        try await connection.closeFuture.get()
        #expect(connection.isClosed)
        let query = Task { _ = try await connection.query("SELECT 1", logger: logger).get() }
        #expect(await !completes(within: .seconds(1)) { try await query.value })
        query.cancel()
        #expect(await !completes(within: .seconds(1)) { try await query.value })  // cancelling does not end it
    }

    @Test func thePoolLendsAConnectionTheServerClosedAndItsNextStatementIsLost() async throws {
        var configuration = try location().clientConfiguration()
        configuration.options.maximumConnections = 1
        let client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        let run = Task { await client.run() }
        defer { run.cancel() }
        let sleeper = Task { _ = try await client.query("SELECT pg_sleep(30)", logger: logger).collect() }
        let victim = try await pid(running: "SELECT pg_sleep(30)")
        let next = Task {
            try await client.withConnection { connection in
                try await Task.sleep(for: .milliseconds(50))  // any work between the lease and the first statement
                _ = try await connection.query("SELECT 1", logger: logger).get()
            }
        }
        try await Task.sleep(for: .milliseconds(100))  // the next caller waits for the only connection
        try await terminate(victim)
        _ = await sleeper.result
        #expect(await !completes(within: .seconds(1)) { try await next.value })
    }

    // The workaround, against the same faults.

    /// A client of the gateway's on a pool of one connection.
    func database(timeout: Duration) throws -> (PostgresDatabaseClient, PostgresPool) {
        var location = try location()
        location.maximumConnections = 2  // one for the pool, one would listen
        let pool = PostgresPool(configuration: try location.clientConfiguration(), logger: logger)
        return (PostgresDatabaseClient(pool: pool, logger: logger, timeouts: DatabaseTimeouts(call: timeout)), pool)
    }

    @Test func theGatewaysNextCallAfterATerminatedConnectionIsAnswered() async throws {
        let (database, pool) = try database(timeout: .seconds(10))
        defer { Task { await pool.close() } }
        let sleeper = Task { try await database.query("SELECT pg_sleep(30)") }
        let victim = try await pid(running: "SELECT pg_sleep(30)")
        let next = Task { try await database.query("SELECT 1").first()?.decode(Int.self) }
        try await Task.sleep(for: .milliseconds(100))
        try await terminate(victim)
        // The terminated call fails as "try again later", at once.
        let failure = await #expect(throws: DependencyUnavailable.self) { try await sleeper.value }
        #expect(failure?.dependency == "the database")
        // The waiting call is lent a working connection, not the dead one, and answered.
        #expect(await completes(within: .seconds(3)) { _ = try await next.value })
        #expect(try await next.value == 1)
    }

    @Test func aTransactionWhoseConnectionIsTerminatedFailsAtOnceAndThePoolServesOn() async throws {
        let (database, pool) = try database(timeout: .seconds(30))
        defer { Task { await pool.close() } }
        let started = ContinuousClock.now
        let transaction = Task {
            try await database.transaction { session in
                let pid = try await session.query("SELECT pg_backend_pid()").first()?.decode(Int32.self)
                try await terminate(try #require(pid))
                try await session.connection.closeFuture.get()
                // What PostgresNIO's own withTransaction does next (a statement, or ROLLBACK) would never be answered.
                try await session.query("SELECT 1")
            }
        }
        await #expect(throws: DependencyUnavailable.self) { try await transaction.value }
        // Well before its deadline (a loaded machine takes seconds over what takes milliseconds alone).
        #expect(ContinuousClock.now - started < .seconds(15))
        #expect(try await database.query("SELECT 2").first()?.decode(Int.self) == 2)
    }

    @Test func aCallThatNeverEndsIsCutAtItsDeadlineAndItsConnectionDiscarded() async throws {
        let (database, pool) = try database(timeout: .seconds(3))
        defer { Task { await pool.close() } }
        // Every connection carries the server-side limits derived from the deadline.
        let limits = try await database.query(
            """
            SELECT current_setting('statement_timeout'), current_setting('lock_timeout'),
              current_setting('idle_in_transaction_session_timeout')
            """
        ).first()?.decode((String, String, String).self)
        #expect(limits?.0 == "2400ms" && limits?.1 == "1500ms" && limits?.2 == "6s", "\(String(describing: limits))")
        let started = ContinuousClock.now
        // The server's statement_timeout (4/5 of the deadline) ends it cleanly first, or the deadline does (on a
        // loaded machine the server's answer may come late): either way the call ends in time, as "try again later".
        let failure = await #expect(throws: DependencyUnavailable.self) {
            try await database.query("SELECT pg_sleep(10)")
        }
        #expect(failure?.dependency == "the database")
        // Far from the 10 s the statement would take (a loaded machine answers seconds late).
        #expect(ContinuousClock.now - started < .seconds(7))
        #expect(try await database.query("SELECT 3").first()?.decode(Int.self) == 3)
        // A lock held elsewhere: lock_timeout (half the deadline) answers 55P03.
        let holder = try await PostgresConnection.connect(
            configuration: try location().connectionConfiguration(), id: 97, logger: logger)
        _ = try await holder.query("CREATE TABLE IF NOT EXISTS hang_test_lock (id int)", logger: logger).get()
        _ = try await holder.query("BEGIN", logger: logger).get()
        _ = try await holder.query("LOCK TABLE hang_test_lock IN ACCESS EXCLUSIVE MODE", logger: logger).get()
        let locked = await #expect(throws: DependencyUnavailable.self) {
            try await database.query("SELECT count(*) FROM hang_test_lock")
        }
        #expect(locked?.dependency == "the database")
        _ = try await holder.query("ROLLBACK", logger: logger).get()
        _ = try await holder.query("DROP TABLE hang_test_lock", logger: logger).get()
        try await holder.close()
    }
}
