/// The clock that code which waits and polls measures its waits on: monotonic (`ContinuousClock`) in production, one
/// a test moves by hand to try a long wait in no time.
public protocol WaitingClock: Sendable {
    /// A monotonic reading: only differences between two readings mean anything.
    var now: ContinuousClock.Instant { get }
    /// Waits `duration`, or throws `CancellationError` when the task is cancelled first.
    func sleep(for duration: Duration) async throws
}

/// The system's monotonic clock.
public struct SystemWaitingClock: WaitingClock {
    public init() {}
    public var now: ContinuousClock.Instant { ContinuousClock.now }
    public func sleep(for duration: Duration) async throws { try await Task.sleep(for: duration) }
}
