import Foundation
import GRDB
import Logging
import PostgresNIO
import Resilience
import ServiceLifecycle

/// The gateway's database, opened and migrated, with what must run while it is in use.
struct OpenedDatabase: Sendable {
    let storage: GatewayStorage
    /// Services to run beside the server: PostgreSQL's change listener.
    let services: [any Service]
    private let pool: PostgresPool?

    /// Opens the database at `location` and brings its schema up to date. PostgreSQL is waited for up to
    /// `waitForServer` (in a compose file or a cluster, the gateway may start before the database accepts
    /// connections), with a log line for each failed attempt.
    /// Every call to it is bounded by `timeout` (`GATEWAY_DATABASE_TIMEOUT`).
    static func open(
        _ location: DatabaseLocation, timeout: Duration = .seconds(5), logger: Logger,
        waitForServer: Duration = .seconds(30)
    ) async throws -> OpenedDatabase {
        switch location {
        case .sqlite(let path):
            let storage = GatewayStorage.sqlite(try SQLiteSchema.open(path: path), timeout: timeout)
            return OpenedDatabase(storage: storage, services: [], pool: nil)
        case .postgres(let server):
            if server.mayBeUnencrypted {
                logger.warning(
                    "The connection to PostgreSQL may be unencrypted (sslmode=\(server.tls.rawValue) to another host)",
                    metadata: ["database": "\(server.displayName)"])
            }
            let pool = PostgresPool(configuration: try server.clientConfiguration(), logger: logger)
            let database = PostgresDatabaseClient(
                pool: pool, logger: logger, timeouts: DatabaseTimeouts(call: timeout))
            do {
                try await migrate(database, server: server, logger: logger, waitForServer: waitForServer)
            } catch {
                await pool.close()
                throw error
            }
            let storage = GatewayStorage.postgres(database)
            let connection = try server.connectionConfiguration()
            return OpenedDatabase(
                storage: storage,
                services: [
                    PostgresChangeListener(database: database, connection: connection, changes: storage.changes),
                    PostgresPoolSupervisor(pool: pool, connection: connection, logger: logger),
                ],
                pool: pool)
        }
    }

    private static func migrate(
        _ database: PostgresDatabaseClient, server: PostgresLocation, logger: Logger, waitForServer: Duration
    ) async throws {
        let deadline = ContinuousClock.now + waitForServer
        while true {
            do {
                let applied = try await PostgresSchema.migrate(database)
                if !applied.isEmpty {
                    logger.notice(
                        "Database schema migrated",
                        metadata: ["database": "\(server.displayName)", "versions": "\(applied)"])
                }
                return
            } catch let error as DependencyUnavailable where ContinuousClock.now < deadline {
                // Refused, unreachable, closed, or starting up (57P03): the server may still be starting.
                logger.warning(
                    "Waiting for PostgreSQL",
                    metadata: ["database": "\(server.displayName)", "error": "\(error.detail)"])
                try await Task.sleep(for: .seconds(1))
            }
        }
    }

    /// Closes the PostgreSQL connections, once the server has stopped.
    func close() async {
        await pool?.close()
    }
}
