import Foundation
import JWTAuth
import Logging
import TestSupport
import Testing

@testable import McpGateway

@Suite("MCP session registry")
struct SessionRegistryTests {
    let clock = ManualClock(Date(timeIntervalSince1970: 1_750_000_000))

    static let secret = String(repeating: "s", count: 40)

    func registry(
        maximum: Int = 10, perUser: Int = 2, idle: TimeInterval = 600, secret: String? = Self.secret,
        lifetime: TimeInterval = 86_400
    ) -> SessionRegistry {
        SessionRegistry(
            limits: .init(idleTimeout: idle, maximum: maximum, maximumPerUser: perUser),
            ids: SessionIDs(secret: secret, lifetime: lifetime), clock: clock, logger: Logger(label: "test"))
    }

    func open(_ sessions: SessionRegistry, _ owner: String) throws -> MCPSession {
        try sessions.open(owner: owner, revision: .v20251125, transport: .streamableHTTP)
    }

    @Test func sessionsAreBoundToTheirOwner() throws {
        let sessions = registry()
        let session = try open(sessions, "alice")
        #expect(session.id.count >= 43)
        #expect(sessions.session(id: session.id, owner: "alice") != nil)
        #expect(sessions.session(id: session.id, owner: "bob") == nil)
        #expect(sessions.session(id: "other", owner: "alice") == nil)
        sessions.close(session.id, reason: "test")
        #expect(sessions.session(id: session.id, owner: "alice") == nil)
        #expect(session.isClosed)
    }

    @Test func aUserAtTheirLimitRetiresTheirOwnLeastRecentlyUsedSession() throws {
        let sessions = registry(maximum: 10, perUser: 2)
        let first = try open(sessions, "alice")
        clock.advance(by: 1)
        let second = try open(sessions, "alice")
        clock.advance(by: 1)
        _ = sessions.session(id: first.id, owner: "alice")  // first is now the more recently used
        clock.advance(by: 1)
        let bobs = try open(sessions, "bob")
        let third = try open(sessions, "alice")
        #expect(second.isClosed)
        #expect(sessions.session(id: first.id, owner: "alice") === first)
        #expect(sessions.session(id: third.id, owner: "alice") === third)
        #expect(sessions.session(id: bobs.id, owner: "bob") === bobs)
        #expect(sessions.count(of: "alice") == 2)
        // Retired means ended: its id is refused here from now on.
        #expect(sessions.session(id: second.id, owner: "alice") == nil)
    }

    @Test func aFullGatewayRefusesNewSessionsInsteadOfEndingAnotherUsers() throws {
        let sessions = registry(maximum: 3, perUser: 3)
        let alices = try (0..<3).map { _ in try open(sessions, "alice") }
        #expect(throws: SessionRegistry.Full.self) { try open(sessions, "bob") }
        #expect(alices.allSatisfy { !$0.isClosed })
        // Alice herself is at her own limit too: her oldest session makes room.
        let newest = try open(sessions, "alice")
        #expect(sessions.count == 3)
        #expect(alices.filter(\.isClosed).count == 1)
        #expect(!newest.isClosed)
        sessions.close(newest.id, reason: "test")
        #expect(throws: Never.self) { try open(sessions, "bob") }
    }

    @Test func concurrentOpeningsNeverOvershootTheLimits() async throws {
        let sessions = registry(maximum: 1000, perUser: 16)
        await withTaskGroup(of: Void.self) { group in
            for index in 0..<1000 {
                group.addTask { _ = try? self.open(sessions, index.isMultiple(of: 2) ? "alice" : "bob") }
            }
        }
        #expect(sessions.count(of: "alice") == 16)
        #expect(sessions.count(of: "bob") == 16)
        #expect(sessions.count == 32)
    }

    @Test func idleSessionsLoseTheirStateUnlessTheyStreamAndComeBackFromTheirId() throws {
        let sessions = registry(idle: 600)
        let stale = try open(sessions, "alice")
        let streaming = try open(sessions, "carol")
        #expect(
            streaming.attach(
                EventStream(
                    limits: .init(bufferBytes: 1024, stallTimeout: .seconds(30), keepAliveInterval: .seconds(15)))))
        clock.advance(by: 500)
        let recent = try open(sessions, "bob")
        clock.advance(by: 200)
        #expect(sessions.closeIdle() == 1)
        #expect(stale.isClosed && sessions.count == 2)
        #expect(sessions.session(id: recent.id, owner: "bob") === recent)
        #expect(sessions.session(id: streaming.id, owner: "carol") === streaming)
        // The idle session's next request rebuilds it: the session lasts its lifetime, not its memory.
        let rebuilt = try #require(sessions.session(id: stale.id, owner: "alice"))
        #expect(rebuilt !== stale && rebuilt.revision == .v20251125 && sessions.count == 3)
    }

    @Test func anotherInstanceWithTheSameKeyTakesASessionUp() throws {
        let first = registry()
        let second = registry()
        let session = try open(first, "alice")
        let taken = try #require(second.session(id: session.id, owner: "alice"))
        #expect(taken.id == session.id && taken.revision == session.revision && taken.transport == .streamableHTTP)
        #expect(taken.expiresAt == session.expiresAt)
        #expect(second.session(id: session.id, owner: "bob") == nil)
        // Not with another key (as in external mode without MCP_SESSION_KEY), nor a legacy /sse session, whose
        // stream lives on the instance that opened it.
        #expect(registry(secret: nil).session(id: session.id, owner: "alice") == nil)
        #expect(registry(secret: String(repeating: "x", count: 40)).session(id: session.id, owner: "alice") == nil)
        let legacy = try first.open(owner: "alice", revision: .v20241105, transport: .legacySSE)
        #expect(second.session(id: legacy.id, owner: "alice") == nil)
    }

    @Test func aDeleteEndsASessionThisInstanceDoesNotHoldWithoutTakingItUp() throws {
        let opening = registry(perUser: 1)
        let elsewhere = registry(perUser: 1)
        let session = try open(opening, "alice")
        let held = try open(elsewhere, "alice")  // at Alice's cap on this instance
        #expect(elsewhere.end(id: session.id, owner: "alice"))
        #expect(!held.isClosed && elsewhere.count(of: "alice") == 1)  // nothing retired to make room
        #expect(elsewhere.session(id: session.id, owner: "alice") == nil)
        #expect(!elsewhere.end(id: session.id, owner: "alice"))
        #expect(!elsewhere.end(id: held.id, owner: "bob"))
        #expect(!elsewhere.end(id: "garbage", owner: "alice"))
        #expect(elsewhere.end(id: held.id, owner: "alice") && held.isClosed)
        let legacy = try opening.open(owner: "alice", revision: .v20241105, transport: .legacySSE)
        #expect(!opening.end(id: legacy.id, owner: "alice") && !legacy.isClosed)
    }

    @Test func endedIdsAreBounded() throws {
        let sessions = SessionRegistry(
            limits: .init(idleTimeout: 600, maximum: 10, maximumPerUser: 10),
            ids: SessionIDs(secret: Self.secret, lifetime: 86_400), clock: clock, logger: Logger(label: "test"),
            endedCapacity: 50)
        var closed: [MCPSession] = []
        for _ in 0..<70 {
            let session = try open(sessions, "alice")
            sessions.close(session.id, reason: "test")
            closed.append(session)
            clock.advance(by: 1)
        }
        #expect(sessions.endedCount == 50)
        // The oldest were forgotten (their ids would be taken up again); the newest are still refused.
        #expect(sessions.session(id: closed.last!.id, owner: "alice") == nil)
        #expect(sessions.session(id: closed.first!.id, owner: "alice") != nil)
    }

    @Test func endedSessionsStayEndedHereAndEveryIdExpires() throws {
        let sessions = registry(lifetime: 3600)
        let session = try open(sessions, "alice")
        sessions.close(session.id, reason: "the client ended it")
        #expect(sessions.session(id: session.id, owner: "alice") == nil)
        sessions.closeIdle()
        #expect(sessions.session(id: session.id, owner: "alice") == nil)

        let other = try open(sessions, "alice")
        let elsewhere = registry(lifetime: 3600)
        clock.advance(by: 3599)
        #expect(sessions.session(id: other.id, owner: "alice") != nil)
        #expect(elsewhere.session(id: other.id, owner: "alice") != nil)
        clock.advance(by: 1)
        #expect(sessions.session(id: other.id, owner: "alice") == nil)
        #expect(registry(lifetime: 3600).session(id: other.id, owner: "alice") == nil)
    }

    @Test func forgedAndDamagedIdsFindNothing() throws {
        let sessions = registry()
        let id = try open(sessions, "alice").id
        #expect(id.count > 43 && id.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") })
        var damaged = Array(id)
        damaged[damaged.count / 2] = damaged[damaged.count / 2] == "A" ? "B" : "A"
        let other = registry()
        for candidate in [
            String(damaged), String(id.dropLast()), id + "A", "", "%%%", String(repeating: "A", count: 5000),
        ] {
            #expect(other.session(id: candidate, owner: "alice") == nil)
        }
    }

    @Test func closingEverythingEndsStreams() throws {
        let sessions = registry()
        let session = try open(sessions, "alice")
        let stream = EventStream(
            limits: .init(bufferBytes: 1024, stallTimeout: .seconds(30), keepAliveInterval: .seconds(15)))
        #expect(session.attach(stream))
        #expect(!session.attach(stream))  // one stream per session
        sessions.closeAll()
        #expect(sessions.count == 0)
        #expect(!stream.isOpen)
        #expect(!stream.send([1, 2, 3]))
    }
}
