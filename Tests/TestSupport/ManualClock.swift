import Foundation
import JWTAuth
import Synchronization

/// A clock that only moves when told to: for tests.
public final class ManualClock: WallClock {
    private let current: Mutex<Date>

    /// Creates a clock standing at `start`.
    public init(_ start: Date = Date(timeIntervalSince1970: 1_750_000_000)) {
        self.current = Mutex(start)
    }

    /// The time the clock stands at.
    public var now: Date { current.withLock { $0 } }

    /// Moves the clock forward (or backward, with a negative interval).
    public func advance(by interval: TimeInterval) {
        current.withLock { $0 = $0.addingTimeInterval(interval) }
    }

    /// Sets the clock to `date`.
    public func set(_ date: Date) {
        current.withLock { $0 = date }
    }
}
