import Synchronization

/// A write that ends or changes what an access token stands for.
enum GrantChange: Sendable, Equatable {
    /// A grant was revoked or deleted, or its upstream tokens changed.
    case grant(id: String)
    /// One access token was deleted.
    case accessToken(digest: String)
    /// A client was changed or deleted (``ClientCache``).
    case client(id: String)
    /// Changes may have been missed (the connection that listens for other instances' changes dropped): forget
    /// everything.
    case unknown
}

/// Where stores announce their writes, once committed, to the caches of this process.
///
/// With SQLite only this process writes, and the stores announce their own writes. With PostgreSQL every write is also
/// sent with `NOTIFY` in its transaction, and ``PostgresChangeListener`` announces what other instances wrote. While
/// that listener is not connected the feed is not ``isComplete``: caches must not take anything new (what they hold
/// expires within their short lifetime), and they are emptied when it is complete again.
final class GrantChangeFeed: Sendable {
    private struct State {
        var subscribers: [@Sendable (GrantChange) -> Void] = []
        var isComplete: Bool
    }

    private let state: Mutex<State>

    /// - Parameter complete: Whether every write reaches this feed from the start (a single process's database).
    init(complete: Bool = true) {
        state = Mutex(State(isComplete: complete))
    }

    /// Whether every committed write is announced here, so that caching is safe.
    var isComplete: Bool { state.withLock { $0.isComplete } }

    func subscribe(_ subscriber: @escaping @Sendable (GrantChange) -> Void) {
        state.withLock { $0.subscribers.append(subscriber) }
    }

    func publish(_ change: GrantChange) {
        for subscriber in state.withLock({ $0.subscribers }) { subscriber(change) }
    }

    /// Marks whether changes from elsewhere are being received. Becoming complete announces ``GrantChange/unknown``
    /// first: changes may have been missed while it was not, so whatever was cached before must go.
    ///
    /// Becoming incomplete announces nothing: what caches hold stays usable for the little time they keep anything
    /// (an outage of the database must not turn every cached token into a database read that fails), and they take
    /// nothing new.
    func setComplete(_ complete: Bool) {
        if complete {
            publish(.unknown)
            state.withLock { $0.isComplete = true }
        } else {
            state.withLock { $0.isComplete = false }
        }
    }
}
