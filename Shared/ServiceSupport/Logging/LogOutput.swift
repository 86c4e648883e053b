import Foundation
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
        let event: Event
        let handlerMetadata: Logger.Metadata
        let source: String
    }

    /// What a record says, beside the handler's metadata.
    enum Event: Sendable {
        /// A message and its metadata, as swift-log hands them to a handler.
        case logged(Logger.Message, metadata: Logger.Metadata?)
        /// An access line, kept as its parts until the writer formats it (``AccessLine``).
        case access(AccessLine)
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
                        event: .logged(
                            "\(dropped) log lines below notice were dropped: standard output did not keep up",
                            metadata: nil),
                        handlerMetadata: [:], source: "ServiceSupport"))
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
