import Logging
import Synchronization

/// Collects the records of a logger, so that a test can count them and read what they said.
public final class LogCapture: Sendable {
    public struct Record: Sendable {
        public let level: Logger.Level
        public let message: String
        public let metadata: Logger.Metadata
    }

    private let captured = Mutex<[Record]>([])

    public init() {}

    /// A logger at `trace` whose every record is kept here.
    public var logger: Logger {
        var logger = Logger(label: "test") { _ in Handler(capture: self) }
        logger.logLevel = .trace
        return logger
    }

    public var records: [Record] { captured.withLock { $0 } }

    public func count(atLeast level: Logger.Level) -> Int {
        records.filter { $0.level >= level }.count
    }

    public func messages(atLeast level: Logger.Level) -> [String] {
        records.filter { $0.level >= level }.map(\.message)
    }

    fileprivate func append(_ record: Record) {
        captured.withLock { $0.append(record) }
    }

    private struct Handler: LogHandler {
        let capture: LogCapture
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(event: LogEvent) {
            var all = metadata
            if let own = event.metadata { all.merge(own) { _, new in new } }
            capture.append(Record(level: event.level, message: event.message.description, metadata: all))
        }
    }
}
