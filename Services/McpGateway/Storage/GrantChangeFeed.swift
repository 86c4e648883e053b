import Synchronization

/// A write that ends or changes what an access token stands for.
enum GrantChange: Sendable, Equatable {
    /// A grant was revoked or deleted, or its upstream tokens changed.
    case grant(id: String)
    /// One access token was deleted.
    case accessToken(digest: String)
    /// Changes may have been missed (the connection that listens for other instances' changes dropped): forget
    /// everything.
    case unknown
}

/// Where stores announce their writes, once committed, to the caches of this process.
///
/// With SQLite only this process writes, and the stores announce their own writes. With PostgreSQL every write is also
/// sent with `NOTIFY` in its transaction, and ``PostgresChangeListener`` announces what other instances wrote. While
/// that listener is not connected the feed is not ``isComplete``, and caches must not keep anything.
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

    /// Marks whether changes from elsewhere are being received; losing them announces ``GrantChange/unknown``.
    func setComplete(_ complete: Bool) {
        let lost = state.withLock { state in
            defer { state.isComplete = complete }
            return state.isComplete && !complete
        }
        if lost || complete { publish(.unknown) }
    }
}
