import Foundation
import GRDB
import Logging
import PostgresNIO
import ServiceLifecycle

/// The gateway's database, opened and migrated, with what must run while it is in use.
struct OpenedDatabase: Sendable {
    let storage: GatewayStorage
    /// Services to run beside the server: PostgreSQL's change listener.
    let services: [any Service]
    private let pool: Task<Void, Never>?

    /// Opens the database at `location` and brings its schema up to date. PostgreSQL is waited for up to
    /// `waitForServer` (in a compose file or a cluster, the gateway may start before the database accepts
    /// connections), with a log line for each failed attempt.
    static func open(_ location: DatabaseLocation, logger: Logger, waitForServer: Duration = .seconds(30))
        async throws -> OpenedDatabase
    {
        switch location {
        case .sqlite(let path):
            let storage = GatewayStorage.sqlite(try SQLiteSchema.open(path: path))
            return OpenedDatabase(storage: storage, services: [], pool: nil)
        case .postgres(let server):
            if server.mayBeUnencrypted {
                logger.warning(
                    "The connection to PostgreSQL may be unencrypted (sslmode=\(server.tls.rawValue) to another host)",
                    metadata: ["database": "\(server.displayName)"])
            }
            let client = PostgresClient(configuration: try server.clientConfiguration(), backgroundLogger: logger)
            let pool = Task { await client.run() }
            let database = PostgresDatabaseClient(client: client, logger: logger)
            do {
                try await migrate(database, server: server, logger: logger, waitForServer: waitForServer)
            } catch {
                pool.cancel()
                await pool.value
                throw error
            }
            let storage = GatewayStorage.postgres(database)
            return OpenedDatabase(
                storage: storage, services: [PostgresChangeListener(database: database, changes: storage.changes)],
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
            } catch let error as PSQLError where error.code != .server && ContinuousClock.now < deadline {
                // Not an answer from the server (refused, unreachable, closed): it may still be starting.
                logger.warning(
                    "Waiting for PostgreSQL", metadata: ["database": "\(server.displayName)", "error": "\(error.code)"])
                try await Task.sleep(for: .seconds(1))
            }
        }
    }

    /// Closes the PostgreSQL connections, once the server has stopped.
    func close() async {
        pool?.cancel()
        await pool?.value
    }
}
