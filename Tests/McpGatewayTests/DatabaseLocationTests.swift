import Foundation
import Logging
import PostgresNIO
import ServiceSupport
import Testing

@testable import McpGateway

@Suite("GATEWAY_DATABASE_URL")
struct DatabaseLocationTests {
    func load(_ values: [String: String]) throws -> DatabaseLocation {
        try DatabaseLocation.load(from: Settings(environment: values))
    }

    @Test func withoutAURLTheGatewayKeepsItsSQLiteFile() throws {
        #expect(try load([:]) == .sqlite(path: ".data/gateway.sqlite"))
        #expect(try load(["GATEWAY_DATABASE": "/var/lib/g.sqlite"]) == .sqlite(path: "/var/lib/g.sqlite"))
    }

    @Test func aURLIsParsedAsLibpqDoes() throws {
        guard
            case .postgres(let location) = try load([
                "GATEWAY_DATABASE_URL": "postgresql://gw:p%2541%40x@db.internal:6432/mcp%2Dgateway?sslmode=require"
                    + "&application_name=edge-1&connect_timeout=9",
                "GATEWAY_DATABASE_MAX_CONNECTIONS": "25",
            ])
        else {
            Issue.record("not PostgreSQL")
            return
        }
        #expect(location.username == "gw" && location.password == "p%41@x")  // decoded once, not twice
        #expect(location.host == "db.internal" && location.port == 6432 && location.database == "mcp-gateway")
        #expect(location.tls == .require && location.applicationName == "edge-1" && location.connectTimeout == 9)
        #expect(location.maximumConnections == 25 && !location.isLocal && !location.mayBeUnencrypted)
        #expect(location.displayName == "gw@db.internal:6432/mcp-gateway")
    }

    @Test func tlsIsVerifiedByDefaultOffThisMachine() throws {
        #expect(try PostgresLocation(url: "postgres://u@db.example.com/d").tls == .verifyFull)
        #expect(try PostgresLocation(url: "postgres://u@127.0.0.1/d").tls == .prefer)
        let socket = try PostgresLocation(url: "postgres://u@/d?host=/var/run/postgresql")
        #expect(socket.unixSocketPath == "/var/run/postgresql/.s.PGSQL.5432" && socket.isLocal)
        // An explicit choice for a private network is allowed, and flagged for a warning.
        #expect(try PostgresLocation(url: "postgres://u@postgres/d?sslmode=disable").mayBeUnencrypted)
    }

    @Test(arguments: [
        "mysql://u@h/d", "postgres://h/d", "postgres://u@h/d?sslmode=sometimes", "postgres://u@h/d?pool=3",
        "postgres://u@h/d?host=db2", "postgres://u@h/d?connect_timeout=0", "not a url",
    ])
    func badURLsAreOneLineErrors(_ url: String) {
        #expect {
            try DatabaseLocation.load(from: Settings(environment: ["GATEWAY_DATABASE_URL": url]))
        } throws: { error in
            (error as? ConfigurationError)?.variable == "GATEWAY_DATABASE_URL"
        }
    }

    @Test func thePoolKeepsAllItsConnectionsOpen() throws {
        var location = try PostgresLocation(url: "postgres://u@127.0.0.1/d")
        for maximum in [2, 10, 25] {
            location.maximumConnections = maximum
            let options = try location.clientConfiguration().options
            // One of the maximum listens, outside the pool; the pool never closes one for being idle.
            #expect(options.maximumConnections == maximum - 1 && options.minimumConnections == maximum - 1)
            #expect(options.keepAliveBehavior != nil)
        }
    }

    @Test func oneConnectionIsNotEnough() {
        #expect(throws: ConfigurationError.self) {
            try load(["GATEWAY_DATABASE_URL": "postgres://u@h/d", "GATEWAY_DATABASE_MAX_CONNECTIONS": "1"])
        }
    }
}

@Suite("Identifiers operators type")
struct IdentifierTests {
    @Test func clientAndGrantIdsNeverLookLikeOptions() {
        let random = SystemRandomSource()
        for id in (0..<2000).flatMap({ _ in
            [GatewayTokenFormat.newClientID(from: random), GatewayTokenFormat.newGrantID(from: random)]
        }) {
            #expect(!id.hasPrefix("-") && id.count == 22)
            #expect(id.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") })
        }
    }

    /// Bytes that would make an id begin with `-` (base64url 62: a first byte of 0xF8 to 0xFB) are drawn again.
    @Test func anIdThatWouldBeginWithADashIsDrawnAgain() {
        let random = ScriptedRandomSource([[0xF8] + Array(repeating: 0, count: 15), Array(repeating: 0, count: 16)])
        #expect(GatewayTokenFormat.newClientID(from: random) == "AAAAAAAAAAAAAAAAAAAAAA")
        #expect(random.remaining == 0)
    }
}

/// The gateway's pool against a real server: what ``PostgresLocation/clientConfiguration()`` promises.
@Suite(.enabled(if: StoreBackend.postgresURL != nil, "needs GATEWAY_TEST_DATABASE_URL"))
struct PostgresPoolConnectionTests {
    @Test func thePoolOpensAllItsConnectionsWithoutBeingAsked() async throws {
        let name = "pool-test-\(UUID().uuidString.prefix(8))"
        var location = try PostgresLocation(url: try #require(StoreBackend.postgresURL))
        location.applicationName = name
        location.maximumConnections = 4  // three in the pool, one would listen
        let logger = Logger(label: "test.postgres-pool")
        let pool = PostgresPool(configuration: try location.clientConfiguration(), logger: logger)
        defer { Task { await pool.close() } }
        let observer = try await PostgresConnection.connect(
            configuration: try location.connectionConfiguration(), id: 97, logger: logger)
        defer { Task { try? await observer.close() } }
        // No statement is sent through the pool: its connections are there before the first request needs one.
        let count: PostgresQuery = """
            SELECT count(*)::int FROM pg_stat_activity WHERE application_name = \(name) AND pid <> pg_backend_pid()
            """
        var open = 0
        for _ in 0..<100 {
            open = try await observer.query(count, logger: logger).get().rows.first?.decode(Int.self) ?? 0
            if open >= 3 { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(open == 3)
    }
}

/// Gives the byte strings it was given, in turn.
final class ScriptedRandomSource: RandomSource, @unchecked Sendable {
    private var script: [[UInt8]]
    private let lock = NSLock()

    init(_ script: [[UInt8]]) { self.script = script }

    var remaining: Int { lock.withLock { script.count } }

    func bytes(_ count: Int) -> [UInt8] {
        lock.withLock {
            let next = script.removeFirst()
            precondition(next.count == count, "the script has \(next.count) bytes where \(count) are asked for")
            return next
        }
    }
}
