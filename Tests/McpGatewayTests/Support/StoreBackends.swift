import Foundation
import GRDB
import Logging
import PostgresNIO
import Testing

@testable import McpGateway

extension GatewayStorage {
    /// The stores on an SQLite database, as the suite uses them: it checks outcomes, not speed, and on two cores a
    /// write can wait behind the rest of the suite longer than the production default allows (as on PostgreSQL
    /// below; the deadline tests set their own).
    static func sqlite(_ writer: any DatabaseWriter) -> GatewayStorage { sqlite(writer, timeout: .seconds(30)) }
}

/// The backends the store conformance suite runs on. SQLite always; PostgreSQL when `GATEWAY_TEST_DATABASE_URL` names
/// a server, which `make test` starts (`scripts/with-postgres.sh`). Under `make test`
/// (`GATEWAY_TEST_REQUIRE_POSTGRES=1`) a missing server fails ``StoreBackendTests`` instead of skipping quietly.
enum StoreBackend: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case sqlite
    case postgres

    static let postgresURL = ProcessInfo.processInfo.environment["GATEWAY_TEST_DATABASE_URL"].flatMap {
        $0.isEmpty ? nil : $0
    }

    /// The backends available here.
    static var available: [StoreBackend] { postgresURL == nil ? [.sqlite] : allCases }
    /// The backends several instances can share.
    static var shared: [StoreBackend] { postgresURL == nil ? [] : [.postgres] }

    var testDescription: String { rawValue }

    /// Runs `body` with fresh, empty stores: a temporary SQLite file, or a new PostgreSQL schema that is dropped
    /// afterwards. `instances` opens that many gateways' worth of stores on the same database (each PostgreSQL one
    /// with its own connection pool and change listener, as separate processes would have).
    func withStorage(
        instances: Int = 1, _ body: ([GatewayStorage]) async throws -> Void
    ) async throws {
        switch self {
        case .sqlite:
            let path = FileManager.default.temporaryDirectory
                .appendingPathComponent("gateway-\(UUID().uuidString).sqlite").path
            defer {
                for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
            }
            let database = try SQLiteSchema.open(path: path)
            let storage = GatewayStorage.sqlite(database)
            try await body(Array(repeating: storage, count: instances))
        case .postgres:
            let url = try #require(Self.postgresURL)
            let schema = "t_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
            let logger = Logger(label: "test.postgres")
            let location = try PostgresLocation(url: url)
            var configuration = try location.clientConfiguration()
            let listening = try location.connectionConfiguration()
            let admin = PostgresClient(configuration: configuration, backgroundLogger: logger)
            configuration.options.additionalStartupParameters.append(("search_path", schema))
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { await admin.run() }
                try await admin.query(PostgresQuery(unsafeSQL: "CREATE SCHEMA \(schema)"), logger: logger)
                var storages: [GatewayStorage] = []
                var pools: [PostgresPool] = []
                defer { for pool in pools { Task { await pool.close() } } }
                for _ in 0..<instances {
                    let pool = PostgresPool(configuration: configuration, logger: logger)
                    pools.append(pool)
                    // The suite checks outcomes, not speed: fifty transactions queued on one row while the whole
                    // suite runs on two cores can wait longer than the production default allows (its deadline
                    // tests set their own).
                    let database = PostgresDatabaseClient(
                        pool: pool, logger: logger, timeouts: DatabaseTimeouts(call: .seconds(30)))
                    try await PostgresSchema.migrate(database)
                    let storage = GatewayStorage.postgres(database)
                    group.addTask {
                        try await PostgresChangeListener(
                            database: database, connection: listening, changes: storage.changes
                        ).run()
                    }
                    storages.append(storage)
                }
                // Until each instance listens, its feed says so (and its cache keeps nothing): wait for that.
                for storage in storages {
                    while !storage.changes.isComplete { try await Task.sleep(for: .milliseconds(10)) }
                }
                do {
                    try await body(storages)
                } catch {
                    _ = try? await admin.query(
                        PostgresQuery(unsafeSQL: "DROP SCHEMA \(schema) CASCADE"), logger: logger)
                    group.cancelAll()
                    throw error
                }
                try await admin.query(PostgresQuery(unsafeSQL: "DROP SCHEMA \(schema) CASCADE"), logger: logger)
                group.cancelAll()
            }
        }
    }

    /// One instance's stores.
    func withStorage(_ body: (GatewayStorage) async throws -> Void) async throws {
        try await withStorage(instances: 1) { storages in try await body(storages[0]) }
    }
}

@Suite("Store backends")
struct StoreBackendTests {
    @Test func postgresIsTestedWhereRequired() {
        let required = ProcessInfo.processInfo.environment["GATEWAY_TEST_REQUIRE_POSTGRES"] == "1"
        #expect(
            !required || StoreBackend.postgresURL != nil,
            "make test runs the store tests on PostgreSQL too: GATEWAY_TEST_DATABASE_URL is missing")
    }
}
