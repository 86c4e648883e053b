import Foundation
import JWTAuth
import Logging
import Testing

@testable import McpGateway

@Suite("MCP session registry")
struct SessionRegistryTests {
    let clock = ManualClock(Date(timeIntervalSince1970: 1_750_000_000))

    func registry(maximum: Int = 10, perUser: Int = 2, idle: TimeInterval = 600) -> SessionRegistry {
        SessionRegistry(
            limits: .init(idleTimeout: idle, maximum: maximum, maximumPerUser: perUser), clock: clock,
            logger: Logger(label: "test"))
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
        #expect(sessions.session(id: second.id, owner: "alice") == nil)
        #expect(second.isClosed)
        #expect(sessions.session(id: first.id, owner: "alice") != nil)
        #expect(sessions.session(id: third.id, owner: "alice") != nil)
        #expect(sessions.session(id: bobs.id, owner: "bob") != nil)
        #expect(sessions.count(of: "alice") == 2)
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

    @Test func idleSessionsExpireUnlessTheyStream() throws {
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
        #expect(sessions.session(id: stale.id, owner: "alice") == nil)
        #expect(sessions.session(id: recent.id, owner: "bob") != nil)
        #expect(sessions.session(id: streaming.id, owner: "carol") != nil)
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
