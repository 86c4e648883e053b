import Metrics
import Synchronization

/// swift-metrics handles, made once per key and kept: making one goes through the metrics factory (a lock and a lookup
/// by name and labels), which is too much to do on every request.
public final class MetricHandles<Key: Hashable & Sendable, Handle: Sendable>: Sendable {
    private let handles = Mutex<[Key: Handle]>([:])

    public init() {}

    /// The handle for `key`, made by `make` the first time.
    public func handle(_ key: Key, make: () -> Handle) -> Handle {
        handles.withLock { handles in
            if let found = handles[key] { return found }
            let made = make()
            handles[key] = made
            return made
        }
    }
}

extension Metrics.Timer {
    /// Records a `Duration` (from `ContinuousClock`), in nanoseconds.
    public func record(_ duration: Duration) {
        recordNanoseconds(duration.components.seconds * 1_000_000_000 + duration.components.attoseconds / 1_000_000_000)
    }
}
