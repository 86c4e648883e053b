import Foundation
import Hummingbird

/// The body of a health check: `{"status":"ok","timestamp":"<ISO 8601>"}`.
public struct HealthStatus: ResponseEncodable, Sendable {
    /// Always `ok` while the service answers.
    public let status: String
    /// The service's current time.
    public let timestamp: String

    /// A health status at `date`.
    public init(at date: Date = Date()) {
        self.status = "ok"
        self.timestamp = date.formatted(.iso8601)
    }
}
