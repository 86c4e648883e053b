import Resilience
import Synchronization

/// A ``WaitingClock`` whose sleeps move it on at once: code that waits minutes, polling, runs in no time, and a test
/// reads how long it waited.
public final class ManualWaitingClock: WaitingClock {
    private let start = ContinuousClock.now
    private let elapsed = Mutex<Duration>(.zero)

    public init() {}

    /// How long everyone has slept on this clock, in total.
    public var waited: Duration { elapsed.withLock { $0 } }

    public var now: ContinuousClock.Instant { start + waited }

    public func sleep(for duration: Duration) async throws {
        try Task.checkCancellation()
        elapsed.withLock { $0 += duration }
        await Task.yield()
    }
}
