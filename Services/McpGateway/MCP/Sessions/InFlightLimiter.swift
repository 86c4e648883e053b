import Synchronization

/// Counts the requests being answered per key (a user, a session) and refuses one more than ``limit``, so that no
/// client can make the gateway work on, or hold the bodies of, an unbounded number of its requests at once. Keys whose
/// count falls back to zero are forgotten.
final class InFlightLimiter: Sendable {
    let limit: Int
    private let counts = Mutex<[String: Int]>([:])

    init(limit: Int) { self.limit = limit }

    /// Takes `count` places for `key`; `false` (and nothing taken) when that would exceed the limit.
    func acquire(_ key: String, count: Int = 1) -> Bool {
        counts.withLock { counts in
            let current = counts[key, default: 0]
            guard current + count <= limit else { return false }
            counts[key] = current + count
            return true
        }
    }

    func release(_ key: String, count: Int = 1) {
        counts.withLock { counts in
            let remaining = counts[key, default: 0] - count
            counts[key] = remaining > 0 ? remaining : nil
        }
    }

    /// Takes `count` places for `key`, given back when the permit is released or deallocated; `nil` at the limit.
    func permit(_ key: String, count: Int = 1) -> Permit? {
        acquire(key, count: count) ? Permit(limiter: self, key: key, count: count) : nil
    }

    /// Places taken in an ``InFlightLimiter``, given back once: by ``release()``, or when the permit is deallocated
    /// (a request whose work was dropped unstarted cannot leak its place).
    final class Permit: Sendable {
        private let limiter: InFlightLimiter
        private let key: String
        private let count: Int
        private let released = Mutex(false)

        fileprivate init(limiter: InFlightLimiter, key: String, count: Int) {
            self.limiter = limiter
            self.key = key
            self.count = count
        }

        func release() {
            let wasReleased = released.withLock { released in
                defer { released = true }
                return released
            }
            guard !wasReleased else { return }
            limiter.release(key, count: count)
        }

        deinit { release() }
    }

    /// How many requests `key` has in flight.
    func inFlight(_ key: String) -> Int { counts.withLock { $0[key, default: 0] } }
}
