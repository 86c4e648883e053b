import Foundation

/// Remembers clients for a few seconds, so that `/token` does not read the database for the client on every request:
/// with PostgreSQL that was one round trip of the three a refresh took. The gateway uses it on PostgreSQL only (see
/// ``Gateway``).
///
/// It wraps only the lookup by id, and keeps only clients that exist: one registered a moment ago on another instance
/// is found at once. Whatever changes or deletes a client (a metadata document that changed, an operator's
/// `admin client delete`, the sweep of unused registrations) is announced on the ``GrantChangeFeed`` once committed
/// and drops the entry: on this instance at once, on other instances sharing a PostgreSQL database as soon as the
/// `NOTIFY` arrives. While the feed may miss changes (``GrantChangeFeed/isComplete`` is false), nothing is cached, as
/// in ``AccessTokenCache``.
final class ClientCache: ClientStore {
    private let store: any ClientStore
    private let lifetime: TimeInterval
    private let cache: FeedCache<RegisteredClient>

    init(wrapping store: any ClientStore, feed: GrantChangeFeed, lifetime: TimeInterval = 10, capacity: Int = 10_000) {
        self.store = store
        self.lifetime = lifetime
        self.cache = FeedCache(feed: feed, capacity: capacity) { change in
            switch change {
            case .client(let id): .key(id)
            case .unknown: .all
            case .grant, .accessToken: .nothing
            }
        }
    }

    func client(id: String) async throws -> RegisteredClient? {
        let now = Date()
        let (cached, generation) = cache.cached(id, now: now)
        if let cached { return cached }
        guard let client = try await store.client(id: id) else { return nil }
        cache.store(client, for: id, validUntil: now.addingTimeInterval(lifetime), now: now, readAt: generation)
        return client
    }

    func insert(client: RegisteredClient) async throws { try await store.insert(client: client) }
    func save(client: RegisteredClient) async throws { try await store.save(client: client) }
    func clients(now: Date) async throws -> [ClientSummary] { try await store.clients(now: now) }
    func deleteClient(id: String) async throws -> Bool { try await store.deleteClient(id: id) }
}
