import Foundation
import JWTAuth
import Logging
import Testing

@testable import McpGateway

@Suite("MCP session registry")
struct SessionRegistryTests {
    let clock = ManualClock(Date(timeIntervalSince1970: 1_750_000_000))

    func registry(maximum: Int = 10, perUser: Int = 2, idle: TimeInterval = 600) throws -> SessionRegistry {
        SessionRegistry(
            factory: MCPServerFactory(logger: Logger(label: "test")),
            limits: SessionLimits(idleTimeout: idle, maximum: maximum, maximumPerUser: perUser), clock: clock,
            logger: Logger(label: "test"))
    }

    @Test func sessionsAreBoundToTheirOwner() async throws {
        let sessions = try registry()
        let session = try await sessions.openStreamableHTTP(owner: "alice").0
        #expect(await sessions.session(id: session.id, owner: "alice") != nil)
        #expect(await sessions.session(id: session.id, owner: "bob") == nil)
        #expect(await sessions.session(id: "other", owner: "alice") == nil)
        await sessions.close(session.id)
        #expect(await sessions.session(id: session.id, owner: "alice") == nil)
    }

    @Test func theLeastRecentlyUsedSessionMakesRoom() async throws {
        let sessions = try registry(maximum: 3, perUser: 2)
        let first = try await sessions.openStreamableHTTP(owner: "alice").0
        clock.advance(by: 1)
        let second = try await sessions.openStreamableHTTP(owner: "alice").0
        clock.advance(by: 1)
        _ = await sessions.session(id: first.id, owner: "alice")  // first is now the more recently used
        clock.advance(by: 1)
        let third = try await sessions.openStreamableHTTP(owner: "alice").0
        #expect(await sessions.session(id: second.id, owner: "alice") == nil)
        #expect(await sessions.session(id: first.id, owner: "alice") != nil)
        #expect(await sessions.session(id: third.id, owner: "alice") != nil)
        clock.advance(by: 1)
        _ = try await sessions.openStreamableHTTP(owner: "bob").0
        clock.advance(by: 1)
        _ = try await sessions.openStreamableHTTP(owner: "carol").0
        #expect(await sessions.count == 3)
    }

    @Test func idleSessionsExpire() async throws {
        let sessions = try registry(idle: 600)
        let stale = try await sessions.openStreamableHTTP(owner: "alice").0
        clock.advance(by: 500)
        let recent = try await sessions.openStreamableHTTP(owner: "bob").0
        clock.advance(by: 200)
        #expect(await sessions.closeIdle() == 1)
        #expect(await sessions.session(id: stale.id, owner: "alice") == nil)
        #expect(await sessions.session(id: recent.id, owner: "bob") != nil)
    }
}
