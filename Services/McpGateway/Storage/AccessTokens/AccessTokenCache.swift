import Foundation

/// Remembers authenticated access tokens for a few seconds, so that `/mcp` requests do not read the database each
/// time.
///
/// It wraps only the lookup. Whatever ends or changes a token's validity (a revoked grant, a deleted access token, a
/// replayed code, a reused refresh token, new upstream tokens) is announced on the ``GrantChangeFeed`` once committed,
/// and drops the affected entries: on this instance at once, on other instances sharing a PostgreSQL database as soon
/// as the `NOTIFY` arrives (milliseconds). While the feed may miss changes (``GrantChangeFeed/isComplete`` is false),
/// nothing is cached.
final class AccessTokenCache: AccessTokenStore {
    private let store: any AccessTokenStore
    private let lifetime: TimeInterval
    private let cache: FeedCache<AuthenticatedAccessToken>

    init(
        wrapping store: any AccessTokenStore, feed: GrantChangeFeed, lifetime: TimeInterval = 10, capacity: Int = 10_000
    ) {
        self.store = store
        self.lifetime = lifetime
        self.cache = FeedCache(feed: feed, capacity: capacity) { change in
            switch change {
            case .grant(let id): .matching { $0.grant.id == id }
            case .accessToken(let digest): .key(digest)
            // A deleted client's grants are announced one by one; nothing else about a client changes a token.
            case .client: .nothing
            case .unknown: .all
            }
        }
    }

    func accessToken(digest: String, now: Date) async throws -> AuthenticatedAccessToken? {
        let (cached, generation) = cache.cached(digest, now: now)
        if let cached { return cached }
        guard let found = try await store.accessToken(digest: digest, now: now) else { return nil }
        let validUntil = min(found.token.expiresAt, found.grant.expiresAt, now.addingTimeInterval(lifetime))
        cache.store(found, for: digest, validUntil: validUntil, now: now, readAt: generation)
        return found
    }

    func deleteAccessToken(digest: String, clientID: String) async throws -> Bool {
        try await store.deleteAccessToken(digest: digest, clientID: clientID)
    }
}
