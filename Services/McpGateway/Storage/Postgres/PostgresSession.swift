import Logging
import PostgresNIO
import Synchronization

/// A pooled connection as the stores use it, for one call of ``PostgresDatabaseClient``.
///
/// Its first rule: never send a statement on a connection that has closed. PostgresNIO 1.33.2 hands a statement to
/// the channel without a write promise (`channel.write(HandlerTask.extendedQuery(context), promise: nil)`): once the
/// channel has closed and its handlers are gone, the write fails with nobody told, and the query's promise is never
/// completed. The caller waits for ever, holding its lease (docs/postgresnio-hang.md). So each statement first checks
/// the connection, and a closed one fails at once with ``PostgresSessionError/connectionClosed``. What remains of the
/// race (the server closing the connection between that check and the write) is caught by the call's deadline.
///
/// Its second rule: read every row on the event loop (PostgresNIO's `EventLoopFuture` query), not through the
/// asynchronous row sequence, whose back-pressure state machine traps (`preconditionFailure`) when the server closes a
/// connection while a stream waits for its reader.
final class PostgresSession: Sendable {
    let connection: PostgresConnection
    let logger: Logger
    /// Whether a statement was sent on this lease: until then, a connection found closed can be swapped for another.
    private let sent = Mutex(false)
    /// Whether the connection was closed on purpose (a failed `ROLLBACK`): it must not go back to the pool.
    private let discarded = Mutex(false)

    init(connection: PostgresConnection, logger: Logger) {
        self.connection = connection
        self.logger = logger
    }

    /// Runs one statement and reads all its rows.
    @discardableResult
    func query(_ query: PostgresQuery, file: String = #fileID, line: Int = #line) async throws -> PostgresRows {
        guard !connection.isClosed else {
            throw sent.withLock({ $0 }) ? PostgresSessionError.connectionClosed : .closedBeforeUse
        }
        sent.withLock { $0 = true }
        let answer: EventLoopFuture<PostgresQueryResult> = connection.query(
            query, logger: logger, file: file, line: line)
        return PostgresRows(rows: try await answer.get().rows)
    }

    /// Whether the connection has closed (the server ended it, or a deadline discarded it).
    var isClosed: Bool { connection.isClosed }

    /// Whether ``discard()`` was called.
    var isDiscarded: Bool { discarded.withLock { $0 } }

    /// Closes the connection, which then does not go back to the pool.
    func discard() {
        discarded.withLock { $0 = true }
        connection.discard()
    }
}

/// The rows of one statement, all read within the call's deadline: a row sequence left to be read after the call
/// returned would read from a connection the deadline no longer covers.
struct PostgresRows: Sendable, Sequence {
    let rows: [PostgresRow]

    func makeIterator() -> IndexingIterator<[PostgresRow]> { rows.makeIterator() }

    /// The first row, if any.
    func first() -> PostgresRow? { rows.first }

    /// Every row.
    func all() -> [PostgresRow] { rows }

    /// Every row's one column, decoded.
    func decode<Value: PostgresDecodable>(_ type: Value.Type) throws -> [Value] {
        try rows.map { try $0.decode(Value.self) }
    }
}

enum PostgresSessionError: Error, CustomStringConvertible {
    /// The connection closed before the statement was sent.
    case connectionClosed
    /// The pool lent a connection that had closed already (it learns of a close only later): nothing was sent on it,
    /// so the call may take another.
    case closedBeforeUse

    var description: String {
        switch self {
        case .connectionClosed, .closedBeforeUse:
            "the connection to PostgreSQL closed (the server restarted or ended it)"
        }
    }
}
