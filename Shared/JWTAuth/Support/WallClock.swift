import Foundation

/// The source of the current time. Injected everywhere a decision depends on time, so that expiry and rotation are
/// testable without sleeping.
public protocol WallClock: Sendable {
    /// The current time.
    var now: Date { get }
}

/// The system's clock.
public struct SystemClock: WallClock {
    /// Creates the system clock.
    public init() {}
    /// The current time.
    public var now: Date { Date() }
}
