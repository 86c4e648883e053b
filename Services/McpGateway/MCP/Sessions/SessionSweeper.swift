import Logging
import ServiceLifecycle

/// Closes idle MCP sessions every ``interval`` and every session when the gateway shuts down, which also ends their
/// event streams (an open stream would otherwise hold the shutdown up).
struct SessionSweeper: Service {
    let sessions: SessionRegistry
    let interval: Duration
    let logger: Logger

    func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try? await Task.sleep(for: interval)
                let closed = sessions.closeIdle()
                if closed > 0 { logger.debug("Idle MCP sessions closed", metadata: ["mcp.sessions": "\(closed)"]) }
            }
        }
        sessions.closeAll()
    }
}
