import Foundation
import JWTAuth
import Logging
import ServiceLifecycle

/// Keeps the ``SigningKeyRing`` current on this instance: loads keys other instances made, makes a new key when one is
/// due, deletes retired ones. A failed round (the database down) keeps the keys loaded before and is tried again.
struct SigningKeyRotation: Service {
    let ring: SigningKeyRing
    let clock: any WallClock
    let logger: Logger

    func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try? await Task.sleep(for: ring.schedule.reload)
                guard !Task.isCancelled else { return }
                do { try await ring.refresh(now: clock.now) } catch is CancellationError {
                    return  // shutting down
                } catch {
                    logger.error("Refreshing the signing keys failed", metadata: ["error": "\(error)"])
                }
            }
        }
    }
}
