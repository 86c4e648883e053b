import Foundation
import JWTAuth
import Logging
import ServiceLifecycle

/// Deletes expired rows of the gateway's database once a minute, until the gateway shuts down.
struct ExpirySweeper: Service {
    let maintenance: any StoreMaintenance
    let clock: any WallClock
    let interval: Duration
    /// `UNUSED_CLIENT_TTL`: how long a registered client that never obtained a grant is kept.
    let unusedClientLifetime: TimeInterval
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
            let now = clock.now
            let report = try await maintenance.sweep(
                now: now, unusedClientsBefore: now.addingTimeInterval(-unusedClientLifetime))
            if report.total > 0 { logger.debug("Expired data removed", metadata: ["sweep.rows": "\(report.total)"]) }
        } catch {
            logger.error("Sweeping expired data failed", metadata: ["error": "\(error)"])
        }
    }
}
