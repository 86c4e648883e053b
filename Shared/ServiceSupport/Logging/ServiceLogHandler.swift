import Foundation
import Logging

/// A swift-log handler that hands records to a ``LogOutput``.
public struct ServiceLogHandler: LogHandler {
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    private let label: String
    private let output: LogOutput

    public init(label: String, level: Logger.Level, output: LogOutput = .standardOutput) {
        self.label = label
        self.logLevel = level
        self.output = output
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(
        level: Logger.Level, message: Logger.Message, metadata: Logger.Metadata?, source: String, file: String,
        function: String, line: UInt
    ) {
        append(level: level, event: .logged(message, metadata: metadata), source: source)
    }

    /// Logs an access line at `info`, as ``AccessLogMiddleware`` does for every request: its parts go to the writer
    /// thread as they are, and the message and the metadata are made there, not on the request's path.
    func logAccess(_ line: AccessLine) {
        guard logLevel <= .info else { return }
        append(level: .info, event: .access(line), source: "ServiceSupport")
    }

    private func append(level: Logger.Level, event: LogOutput.Event, source: String) {
        let time = Date().timeIntervalSince1970
        var handlerMetadata = self.metadata
        if let provided = metadataProvider?.get(), !provided.isEmpty {
            handlerMetadata.merge(provided) { _, new in new }
        }
        output.append(
            LogOutput.Record(
                time: time, level: level, label: label, event: event, handlerMetadata: handlerMetadata, source: source))
    }
}

/// The access line of one request: `GET /api/todos 200`, with `http.status` and `http.duration_ms` (the duration in
/// milliseconds, two decimals). The path never has the query string, which can carry codes.
public struct AccessLine: Sendable, Equatable {
    public var method: String
    public var path: String
    public var status: Int
    public var microseconds: Int64

    public init(method: String, path: String, status: Int, microseconds: Int64) {
        self.method = method
        self.path = path
        self.status = status
        self.microseconds = microseconds
    }

    /// `GET /api/todos 200`.
    public var message: String { "\(method) \(path) \(status)" }

    /// `http.status` and `http.duration_ms`.
    public var metadata: Logger.Metadata { Logger.Metadata(uniqueKeysWithValues: fields) }

    /// ``metadata``'s members, sorted by key.
    var fields: [(key: String, value: Logger.MetadataValue)] {
        // Milliseconds with two decimals, without `String(format:)`.
        let hundredths = (microseconds + 5) / 10
        let fraction = hundredths % 100
        return [
            ("http.duration_ms", "\(hundredths / 100).\(fraction < 10 ? "0" : "")\(fraction)"),
            ("http.status", "\(status)"),
        ]
    }
}
