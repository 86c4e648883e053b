import Foundation
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

    @Test func thePoolKeepsOneConnectionOpenAndOpensTheOthersOnDemand() throws {
        var location = try PostgresLocation(url: "postgres://u@127.0.0.1/d")
        for maximum in [2, 10, 25] {
            location.maximumConnections = maximum
            let options = try location.clientConfiguration().options
            // One of the maximum listens, outside the pool. A minimum above one would let PostgresNIO 1.33.2 trap
            // after a database outage (``PostgresLocation/clientConfiguration()``).
            #expect(options.maximumConnections == maximum - 1 && options.minimumConnections == 1)
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
