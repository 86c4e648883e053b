import Foundation
import Logging
import PostgresNIO
import ServiceLifecycle

/// Listens on ``PostgresDatabaseClient/changeChannel`` and announces what every instance writes on this instance's
/// ``GrantChangeFeed``: a grant revoked on one instance is dropped from the others' caches as soon as its transaction
/// commits.
///
/// `NOTIFY` is not stored: what is sent while nobody listens is lost. So the feed is marked incomplete (no caching)
/// until `LISTEN` succeeds, and again from the moment the connection fails until it is back.
struct PostgresChangeListener: Service {
    let database: PostgresDatabaseClient
    let changes: GrantChangeFeed

    func run() async throws {
        await cancelWhenGracefulShutdown {
            var delay: Duration = .milliseconds(250)
            while !Task.isCancelled {
                let started = ContinuousClock.now
                do {
                    try await listen()
                } catch  where !Task.isCancelled {
                    changes.setComplete(false)
                    database.logger.warning(
                        "Listening for other instances' revocations failed; tokens are not cached until it is back",
                        metadata: ["error": "\(String(reflecting: error))", "retry.delay": "\(delay)"])
                } catch {}
                changes.setComplete(false)
                // A connection that lasted a while was fine: retry soon again.
                if ContinuousClock.now - started > .seconds(30) { delay = .milliseconds(250) }
                try? await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(5))
            }
        }
    }

    private func listen() async throws {
        try await database.client.withConnection { connection in
            try await connection.listen(on: PostgresDatabaseClient.changeChannel) { notifications in
                changes.setComplete(true)
                database.logger.debug("Listening for other instances' changes")
                for try await notification in notifications {
                    if let change = GrantChange(notificationPayload: notification.payload) { changes.publish(change) }
                }
            }
        }
    }
}
