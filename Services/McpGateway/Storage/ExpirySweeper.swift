import Foundation
import JWTAuth
import Logging
import ServiceLifecycle

/// Deletes expired rows and closes idle MCP sessions once a minute, until the gateway shuts down.
struct ExpirySweeper: Service {
    /// The gateway mode's database; `nil` in the other modes, which keep no tokens.
    let store: (any GatewayStore)?
    let sessions: SessionRegistry
    let clock: any WallClock
    let interval: Duration
    let logger: Logger

    func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                await sweepOnce()
                try? await Task.sleep(for: interval)
            }
        }
        await sessions.closeAll()
    }

    func sweepOnce() async {
        do {
            let rows = try await store?.sweep(now: clock.now) ?? 0
            let idle = await sessions.closeIdle()
            if rows > 0 || idle > 0 {
                logger.debug("Expired data removed", metadata: ["sweep.rows": "\(rows)", "sweep.sessions": "\(idle)"])
            }
        } catch {
            logger.error("Sweeping expired data failed", metadata: ["error": "\(error)"])
        }
    }
}
