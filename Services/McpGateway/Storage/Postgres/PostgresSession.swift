import Logging
import PostgresNIO

/// A pooled connection as the stores use it, for one call of ``PostgresDatabaseClient``.
///
/// Its one rule: never send a statement on a connection that has closed. PostgresNIO 1.33.2 hands a statement to the
/// channel without a write promise (`channel.write(HandlerTask.extendedQuery(context), promise: nil)`): once the
/// channel has closed and its handlers are gone, the write fails with nobody told, and the query's promise is never
/// completed. The caller waits for ever, holding its lease (docs/postgresnio-hang.md). So each statement first checks
/// the connection, and a closed one fails at once with ``PostgresSessionError/connectionClosed``. What remains of the
/// race (the server closing the connection between that check and the write) is caught by the call's deadline.
struct PostgresSession: Sendable {
    let connection: PostgresConnection
    let logger: Logger

    /// Runs one statement and reads all its rows.
    @discardableResult
    func query(_ query: PostgresQuery, file: String = #fileID, line: Int = #line) async throws -> PostgresRows {
        guard !connection.isClosed else { throw PostgresSessionError.connectionClosed }
        var rows: [PostgresRow] = []
        for try await row in try await connection.query(query, logger: logger, file: file, line: line) {
            rows.append(row)
        }
        return PostgresRows(rows: rows)
    }

    /// Whether the connection has closed (the server ended it, or a deadline discarded it).
    var isClosed: Bool { connection.isClosed }
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

    var description: String {
        switch self {
        case .connectionClosed: "the connection to PostgreSQL closed (the server restarted or ended it)"
        }
    }
}
