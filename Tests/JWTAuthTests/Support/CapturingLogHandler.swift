import Logging
import Synchronization

/// Collects log records so that a test can count them.
final class LogCapture: Sendable {
    private let records = Mutex<[(level: Logger.Level, message: String)]>([])

    var logger: Logger {
        var logger = Logger(label: "test") { _ in Handler(capture: self) }
        logger.logLevel = .trace
        return logger
    }

    func count(atLeast level: Logger.Level) -> Int {
        records.withLock { $0.filter { $0.level >= level }.count }
    }

    func messages(atLeast level: Logger.Level) -> [String] {
        records.withLock { $0.filter { $0.level >= level }.map(\.message) }
    }

    fileprivate func append(_ level: Logger.Level, _ message: String) {
        records.withLock { $0.append((level, message)) }
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
            capture.append(event.level, event.message.description)
        }
    }
}
