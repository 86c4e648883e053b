import Foundation
import JWTAuth
import Logging
import ServiceLifecycle

/// Deletes expired rows of the gateway's database once a minute, until the gateway shuts down.
struct ExpirySweeper: Service {
    let store: any GatewayStore
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
    }

    func sweepOnce() async {
        do {
            let rows = try await store.sweep(now: clock.now)
            if rows > 0 { logger.debug("Expired data removed", metadata: ["sweep.rows": "\(rows)"]) }
        } catch {
            logger.error("Sweeping expired data failed", metadata: ["error": "\(error)"])
        }
    }
}
