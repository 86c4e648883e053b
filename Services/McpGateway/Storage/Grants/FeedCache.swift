import Foundation
import Synchronization

/// What ``AccessTokenCache`` and ``ClientCache`` share: entries kept for a short while, dropped by the writes announced
/// on a ``GrantChangeFeed``, and nothing new kept while the feed may miss some.
///
/// A lookup takes ``cached(_:now:)``'s generation before it reads the database and hands it back to
/// ``store(_:for:validUntil:now:readAt:)``: what it read is kept only if nothing was dropped meanwhile, so a read that
/// began before a revocation committed cannot put the revoked entry back after the revocation cleared it.
final class FeedCache<Value: Sendable>: Sendable {
    private struct Entry {
        let value: Value
        let validUntil: Date
    }

    private struct State {
        var entries: [String: Entry] = [:]
        /// Counts the drops (see the type's documentation).
        var generation: UInt64 = 0
    }

    private let feed: GrantChangeFeed
    private let capacity: Int
    private let state = Mutex(State())

    /// - Parameter drop: For each change announced on `feed`, what to drop: ``Drop/all`` for ``GrantChange/unknown``.
    init(feed: GrantChangeFeed, capacity: Int, drop: @escaping @Sendable (GrantChange) -> Drop) {
        self.feed = feed
        self.capacity = capacity
        feed.subscribe { [weak self] change in self?.apply(drop(change)) }
    }

    /// What one change drops.
    enum Drop {
        case nothing
        case key(String)
        case matching(@Sendable (Value) -> Bool)
        case all
    }

    /// The entry for `key` if it is still valid at `now`, and the generation to hand to ``store(_:for:validUntil:now:readAt:)``.
    func cached(_ key: String, now: Date) -> (value: Value?, generation: UInt64) {
        state.withLock { state in
            guard let entry = state.entries[key], entry.validUntil > now else { return (nil, state.generation) }
            return (entry.value, state.generation)
        }
    }

    /// Keeps `value` until `validUntil`, unless the feed may miss changes or something was dropped since `generation`.
    func store(_ value: Value, for key: String, validUntil: Date, now: Date, readAt generation: UInt64) {
        guard feed.isComplete else { return }
        state.withLock { state in
            guard state.generation == generation else { return }
            if state.entries.count >= capacity { state.entries = state.entries.filter { $0.value.validUntil > now } }
            if state.entries.count >= capacity { state.entries.removeAll() }
            state.entries[key] = Entry(value: value, validUntil: validUntil)
        }
    }

    private func apply(_ drop: Drop) {
        state.withLock { state in
            switch drop {
            case .nothing: return
            case .key(let key): state.entries.removeValue(forKey: key)
            case .matching(let matches): state.entries = state.entries.filter { !matches($0.value.value) }
            case .all: state.entries.removeAll()
            }
            state.generation &+= 1
        }
    }
}
