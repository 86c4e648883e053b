import Foundation
import JSON
import JWTAuth
import Logging
import Synchronization

/// Where every log line of a service goes: standard output, written by a background thread in batches.
///
/// A request that logs (an access line, say) only appends a small record to a queue: the line is formatted and written
/// on the writer thread, many lines per `write(2)`, a few milliseconds later. Lines at `notice` and above are different:
/// they, and everything queued before them, are written before `log` returns, so that what an operator must see (a
/// failure, a security event, the last words before a crash) is never lost in a buffer. What is queued is written at
/// exit too; a SIGKILL or a crash loses the last few milliseconds of `info` and `debug` lines.
public final class LogOutput: Sendable {
    /// One logged event, not yet formatted.
    struct Record: Sendable {
        /// Seconds since 1970.
        let time: Double
        let level: Logger.Level
        let label: String
        let message: Logger.Message
        let handlerMetadata: Logger.Metadata
        let metadata: Logger.Metadata?
        let source: String
    }

    /// The process's log, on standard output.
    public static let standardOutput = LogOutput(descriptor: STDOUT_FILENO)
    /// On standard error: for commands whose standard output is their result.
    public static let standardError = LogOutput(descriptor: STDERR_FILENO)

    /// How long the writer waits for more lines before writing what it has.
    static let batchDelay: UInt32 = 5_000  // microseconds

    /// Lines waiting at most: when standard output stops taking them (a stuck pipe), later `info` and `debug` lines
    /// are dropped and counted rather than held in memory without bound.
    static let queueCapacity = 100_000

    private struct Queue {
        var records: [Record] = []
        var dropped = 0
    }

    private let descriptor: Int32
    private let queue = Mutex(Queue())
    private let wakeUp = NSCondition()
    /// Held while a batch is formatted and written, so that batches reach the file in order.
    private let writing = Mutex<LogFormat>(.text)
    private let started = Atomic<Bool>(false)

    init(descriptor: Int32) {
        self.descriptor = descriptor
    }

    /// The format lines are written in (`LOG_FORMAT`).
    public var format: LogFormat {
        get { writing.withLock { $0 } }
        set { writing.withLock { $0 = newValue } }
    }

    func append(_ record: Record) {
        if record.level >= .notice {
            flush(including: record)
            return
        }
        startIfNeeded()
        let first = queue.withLock { queue in
            guard queue.records.count < Self.queueCapacity else {
                queue.dropped += 1
                return false
            }
            queue.records.append(record)
            return queue.records.count == 1
        }
        if first {
            wakeUp.lock()
            wakeUp.signal()
            wakeUp.unlock()
        }
    }

    /// Writes everything queued (and `record`), now.
    public func flush() { flush(including: nil) }

    private func flush(including record: Record?) {
        writing.withLock { format in
            var (records, dropped) = queue.withLock { queue in
                defer { queue = Queue() }
                return (queue.records, queue.dropped)
            }
            if dropped > 0 {
                records.append(
                    Record(
                        time: Date().timeIntervalSince1970, level: .warning, label: "LogOutput",
                        message: "\(dropped) log lines below notice were dropped: standard output did not keep up",
                        handlerMetadata: [:], metadata: nil, source: "ServiceSupport"))
            }
            if let record { records.append(record) }
            write(records, format: format)
        }
    }

    private func write(_ records: [Record], format: LogFormat) {
        guard !records.isEmpty else { return }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(records.count * 160)
        for record in records { format.append(record, to: &bytes) }
        bytes.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = Foundation.write(descriptor, buffer.baseAddress! + offset, buffer.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    return  // nowhere to report it: the log itself failed
                }
                offset += written
            }
        }
    }

    private func startIfNeeded() {
        guard started.compareExchange(expected: false, desired: true, ordering: .relaxed).exchanged else { return }
        let thread = Thread { [self] in run() }
        thread.name = "log-writer"
        thread.start()
        atexit {
            LogOutput.standardOutput.flush()
            LogOutput.standardError.flush()
        }
    }

    private func run() {
        while true {
            wakeUp.lock()
            while queue.withLock({ $0.records.isEmpty && $0.dropped == 0 }) { wakeUp.wait() }
            wakeUp.unlock()
            // Let a burst of lines gather, then write them with one system call.
            usleep(Self.batchDelay)
            flush(including: nil)
        }
    }
}

/// `LOG_FORMAT`: `text` for people, `json` (one object per line) for log collectors.
public enum LogFormat: String, Sendable, CaseIterable {
    case text
    case json

    func append(_ record: LogOutput.Record, to bytes: inout [UInt8]) {
        switch self {
        case .text: appendText(record, to: &bytes)
        case .json: appendJSON(record, to: &bytes)
        }
    }

    /// `2026-12-01T10:22:33.123Z info McpGateway: key=value key="a value" … [source] message`, one line whatever the
    /// values hold: control characters in a value or the message (a subject with a newline, a name with an escape
    /// sequence) are written as escapes (`\n`, `\u{1B}`), so they can neither start a forged line nor drive the
    /// terminal that shows the log; and a value with a space, `=`, `"` or `\` is quoted (`"` and `\` escaped inside), so
    /// that it cannot pass for more fields (`user.id=alice oauth.client_id=admin`).
    private func appendText(_ record: LogOutput.Record, to bytes: inout [UInt8]) {
        LogTimestamp.append(record.time, to: &bytes)
        bytes.append(UInt8(ascii: " "))
        bytes.append(contentsOf: record.level.rawValue.utf8)
        bytes.append(UInt8(ascii: " "))
        bytes.append(contentsOf: record.label.utf8)
        bytes.append(UInt8(ascii: ":"))
        for (key, value) in Self.merged(record).sorted(by: { $0.key < $1.key }) {
            bytes.append(UInt8(ascii: " "))
            Self.appendEscaped(key, to: &bytes)
            bytes.append(UInt8(ascii: "="))
            Self.appendValue(value.description, to: &bytes)
        }
        bytes.append(contentsOf: " [".utf8)
        bytes.append(contentsOf: record.source.utf8)
        bytes.append(contentsOf: "] ".utf8)
        Self.appendEscaped(record.message.description, to: &bytes)
        bytes.append(UInt8(ascii: "\n"))
    }

    /// `{"timestamp":"…","level":"info","logger":"McpGateway","message":"…","source":"…",<metadata>}`
    private func appendJSON(_ record: LogOutput.Record, to bytes: inout [UInt8]) {
        bytes.append(contentsOf: #"{"timestamp":""#.utf8)
        LogTimestamp.append(record.time, to: &bytes)
        bytes.append(contentsOf: #"","level":""#.utf8)
        bytes.append(contentsOf: record.level.rawValue.utf8)
        bytes.append(contentsOf: #"","logger":"#.utf8)
        JSONValue.writeString(record.label, to: &bytes)
        bytes.append(contentsOf: #","message":"#.utf8)
        JSONValue.writeString(record.message.description, to: &bytes)
        bytes.append(contentsOf: #","source":"#.utf8)
        JSONValue.writeString(record.source, to: &bytes)
        for (key, value) in Self.merged(record).sorted(by: { $0.key < $1.key }) {
            bytes.append(UInt8(ascii: ","))
            JSONValue.writeString(key, to: &bytes)
            bytes.append(UInt8(ascii: ":"))
            LogMetadataJSON.append(value, to: &bytes)
        }
        bytes.append(contentsOf: "}\n".utf8)
    }

    /// A metadata value: as it is when it is one word of plain characters (what nearly every value is), else quoted.
    private static func appendValue(_ text: String, to bytes: inout [UInt8]) {
        let needsQuotes =
            text.isEmpty
            || text.utf8.contains(where: {
                $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "=") || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\")
            })
        guard needsQuotes else { return appendEscaped(text, to: &bytes) }
        var quoted = ""
        quoted.reserveCapacity(text.utf8.count + 2)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": quoted += "\\\""
            case "\\": quoted += "\\\\"
            default: quoted += ClaimText.isUnsafe(scalar) ? ClaimText.escaped(String(scalar)) : String(scalar)
            }
        }
        bytes.append(UInt8(ascii: "\""))
        bytes.append(contentsOf: quoted.utf8)
        bytes.append(UInt8(ascii: "\""))
    }

    /// `text` as it is when it has nothing to escape (what nearly every line is), else ``ClaimText/escaped(_:)``.
    private static func appendEscaped(_ text: String, to bytes: inout [UInt8]) {
        // ASCII controls are below 0x20 or 0x7F; C1 controls, separators and bidi marks all start with a byte of
        // 0xC2 or more in UTF-8. Anything else is copied as it is.
        if text.utf8.contains(where: { $0 < 0x20 || $0 == 0x7F || $0 >= 0xC2 }), !ClaimText.isSafe(text) {
            bytes.append(contentsOf: ClaimText.escaped(text).utf8)
        } else {
            bytes.append(contentsOf: text.utf8)
        }
    }

    private static func merged(_ record: LogOutput.Record) -> Logger.Metadata {
        guard let metadata = record.metadata, !metadata.isEmpty else { return record.handlerMetadata }
        return record.handlerMetadata.merging(metadata) { _, new in new }
    }
}

/// UTC timestamps in RFC 3339 with milliseconds, formatted without `DateFormatter` or the time zone database.
enum LogTimestamp {
    static func append(_ time: Double, to bytes: inout [UInt8]) {
        let whole = time.rounded(.down)
        var seconds = time_t(whole)
        let milliseconds = min(Int((time - whole) * 1000), 999)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func digits(_ value: Int, _ count: Int) {
            var divisor = 1
            for _ in 1..<count { divisor *= 10 }
            var value = value
            while divisor > 0 {
                bytes.append(UInt8(ascii: "0") + UInt8(value / divisor % 10))
                value %= divisor
                divisor /= 10
            }
        }
        digits(Int(parts.tm_year) + 1900, 4)
        bytes.append(UInt8(ascii: "-"))
        digits(Int(parts.tm_mon) + 1, 2)
        bytes.append(UInt8(ascii: "-"))
        digits(Int(parts.tm_mday), 2)
        bytes.append(UInt8(ascii: "T"))
        digits(Int(parts.tm_hour), 2)
        bytes.append(UInt8(ascii: ":"))
        digits(Int(parts.tm_min), 2)
        bytes.append(UInt8(ascii: ":"))
        digits(Int(parts.tm_sec), 2)
        bytes.append(UInt8(ascii: "."))
        digits(milliseconds, 3)
        bytes.append(UInt8(ascii: "Z"))
    }
}

/// Log metadata as JSON, strings written by the shared JSON writer.
enum LogMetadataJSON {
    static func append(_ value: Logger.MetadataValue, to bytes: inout [UInt8]) {
        switch value {
        case .string(let string): JSONValue.writeString(string, to: &bytes)
        case .stringConvertible(let convertible): JSONValue.writeString(convertible.description, to: &bytes)
        case .array(let values):
            bytes.append(UInt8(ascii: "["))
            for (index, value) in values.enumerated() {
                if index > 0 { bytes.append(UInt8(ascii: ",")) }
                append(value, to: &bytes)
            }
            bytes.append(UInt8(ascii: "]"))
        case .dictionary(let values):
            bytes.append(UInt8(ascii: "{"))
            for (index, (key, value)) in values.sorted(by: { $0.key < $1.key }).enumerated() {
                if index > 0 { bytes.append(UInt8(ascii: ",")) }
                JSONValue.writeString(key, to: &bytes)
                bytes.append(UInt8(ascii: ":"))
                append(value, to: &bytes)
            }
            bytes.append(UInt8(ascii: "}"))
        }
    }
}

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
        let time = Date().timeIntervalSince1970
        var handlerMetadata = self.metadata
        if let provided = metadataProvider?.get(), !provided.isEmpty {
            handlerMetadata.merge(provided) { _, new in new }
        }
        output.append(
            LogOutput.Record(
                time: time, level: level, label: label, message: message, handlerMetadata: handlerMetadata,
                metadata: metadata, source: source))
    }
}
