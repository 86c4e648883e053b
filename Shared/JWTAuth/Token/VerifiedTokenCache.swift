import Foundation
import Synchronization

/// Remembers recently verified tokens so that a token presented again skips decoding and the RSA check.
///
/// Bounded: at capacity, expired entries are dropped first, then arbitrary ones. The verifier re-checks `exp` and that
/// the signing key is still published on every hit, so a cached token is never trusted past its expiry or after its
/// key left the issuer's JWKS.
final class VerifiedTokenCache: Sendable {
    private let capacity: Int
    private let entries: Mutex<[String: VerifiedToken]>

    init(capacity: Int) {
        self.capacity = capacity
        self.entries = Mutex([:])
    }

    func lookup(_ token: String) -> VerifiedToken? {
        entries.withLock { $0[token] }
    }

    func insert(_ verified: VerifiedToken, for token: String, now: Date) {
        entries.withLock { entries in
            if entries.count >= capacity {
                entries = entries.filter { $0.value.expiresAt > now }
                while entries.count >= capacity, let victim = entries.keys.first {
                    entries.removeValue(forKey: victim)
                }
            }
            entries[token] = verified
        }
    }

    var count: Int { entries.withLock { $0.count } }
}
