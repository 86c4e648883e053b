import Foundation
import Synchronization

/// Remembers authenticated access tokens for a few seconds, so that `/mcp` requests do not read the database each
/// time.
///
/// It wraps only the lookup. Whatever ends or changes a token's validity (a revoked grant, a deleted access token, a
/// replayed code, a reused refresh token, new upstream tokens) is announced on the ``GrantChangeFeed`` once committed,
/// and drops the affected entries: on this instance at once, on other instances sharing a PostgreSQL database as soon
/// as the `NOTIFY` arrives (milliseconds). While the feed may miss changes (``GrantChangeFeed/isComplete`` is false),
/// nothing is cached.
final class AccessTokenCache: AccessTokenStore {
    private struct Entry {
        let found: AuthenticatedAccessToken
        let validUntil: Date
    }

    private struct State {
        var entries: [String: Entry] = [:]
        /// Counts invalidations. A lookup remembers it before reading the database and stores what it read only if no
        /// invalidation happened meanwhile: a read that began before a revocation committed cannot put the revoked
        /// token back after the revocation cleared it.
        var generation: UInt64 = 0
    }

    private let store: any AccessTokenStore
    private let feed: GrantChangeFeed
    private let lifetime: TimeInterval
    private let capacity: Int
    private let state = Mutex(State())

    init(
        wrapping store: any AccessTokenStore, feed: GrantChangeFeed, lifetime: TimeInterval = 10, capacity: Int = 10_000
    ) {
        self.store = store
        self.feed = feed
        self.lifetime = lifetime
        self.capacity = capacity
        feed.subscribe { [weak self] change in self?.forget(change) }
    }

    func accessToken(digest: String, now: Date) async throws -> AuthenticatedAccessToken? {
        let (cached, generation) = state.withLock { ($0.entries[digest], $0.generation) }
        if let cached, cached.validUntil > now { return cached.found }
        guard let found = try await store.accessToken(digest: digest, now: now) else { return nil }
        guard feed.isComplete else { return found }
        let validUntil = min(found.token.expiresAt, found.grant.expiresAt, now.addingTimeInterval(lifetime))
        state.withLock { state in
            guard state.generation == generation else { return }
            if state.entries.count >= capacity { state.entries = state.entries.filter { $0.value.validUntil > now } }
            if state.entries.count >= capacity { state.entries.removeAll() }
            state.entries[digest] = Entry(found: found, validUntil: validUntil)
        }
        return found
    }

    func deleteAccessToken(digest: String, clientID: String) async throws -> Bool {
        try await store.deleteAccessToken(digest: digest, clientID: clientID)
    }

    private func forget(_ change: GrantChange) {
        state.withLock { state in
            state.generation &+= 1
            switch change {
            case .grant(let id): state.entries = state.entries.filter { $0.value.found.grant.id != id }
            case .accessToken(let digest): state.entries.removeValue(forKey: digest)
            case .unknown: state.entries.removeAll()
            }
        }
    }
}
