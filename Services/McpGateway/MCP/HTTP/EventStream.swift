import Hummingbird
import NIOCore
import Synchronization

/// The server-sent events of one long-lived response (a session's `GET /mcp` stream, a `/sse` stream, a
/// `subscriptions/listen` stream), bounded so that a client that does not read cannot make the gateway hold more than
/// ``Limits/bufferBytes`` for it:
///
/// - ``send(_:)`` queues a complete event; once the events not yet written to the connection would exceed the budget,
///   the stream closes instead (a client that does not read its stream loses it, rather than a response it waits for
///   being dropped silently).
/// - ``pump(into:)`` writes the events; with nothing to write for ``Limits/keepAliveInterval`` it writes a comment,
///   so that proxies keep the connection and a client that left is noticed; an event left unwritten for
///   ``Limits/stallTimeout`` (the connection's buffers are full: the client stopped reading) closes the stream and
///   abandons the write.
final class EventStream: Sendable {
    struct Limits: Sendable {
        var bufferBytes: Int
        var stallTimeout: Duration
        var keepAliveInterval: Duration
    }

    private struct State {
        /// Whether the stream closed because the client does not read it.
        var abandoned = false
        var queuedBytes = 0
        /// When the oldest event still waiting to be written was queued (or started waiting).
        var waitingSince: ContinuousClock.Instant?
        var lastWrite: ContinuousClock.Instant
        var closeReason: String?
    }

    let limits: Limits
    private let state: Mutex<State>
    private let events: AsyncStream<ByteBuffer>
    private let continuation: AsyncStream<ByteBuffer>.Continuation

    init(limits: Limits) {
        self.limits = limits
        self.state = Mutex(State(lastWrite: .now))
        (events, continuation) = AsyncStream.makeStream()
    }

    /// Why the stream closed, once it has.
    var closeReason: String? { state.withLock { $0.closeReason } }
    var isOpen: Bool { closeReason == nil }
    /// Whether the stream closed because its client does not read it.
    var clientStoppedReading: Bool { state.withLock { $0.abandoned } }

    /// Queues `event`; `false` when the stream is closed, or has just closed because the client does not read it.
    @discardableResult
    func send(_ event: [UInt8]) -> Bool {
        let accepted: Bool = state.withLock { state in
            guard state.closeReason == nil else { return false }
            guard state.queuedBytes + event.count <= limits.bufferBytes else {
                state.closeReason = "the client does not read its event stream (\(limits.bufferBytes) bytes waiting)"
                state.abandoned = true
                return false
            }
            state.queuedBytes += event.count
            if state.waitingSince == nil { state.waitingSince = .now }
            continuation.yield(ByteBuffer(bytes: event))
            return true
        }
        if !accepted { continuation.finish() }
        return accepted
    }

    /// Closes the stream; `finalEvent` (a response that ends it gracefully) is still written, whatever the budget.
    func close(reason: String, finalEvent: [UInt8]? = nil) {
        state.withLock { state in
            guard state.closeReason == nil else { return }
            state.closeReason = reason
            if let finalEvent { continuation.yield(ByteBuffer(bytes: finalEvent)) }
        }
        continuation.finish()
    }

    /// Writes the stream's events to `writer` until the stream closes, the client goes away or stops reading.
    func pump(into writer: inout any ResponseBodyWriter) async {
        let output = WriterBox(writer)
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                do {
                    for await event in self.events {
                        try await output.writer.write(event)
                        self.written(event.readableBytes)
                    }
                } catch {
                    self.close(reason: "the client went away")
                }
            }
            group.addTask { await self.watch() }
            // Whichever ends first ends both: the writer when the stream closed, the watcher when the client stalled.
            await group.next()
            self.close(reason: "the client went away")
            group.cancelAll()
        }
        writer = output.writer
    }

    /// Ends the response once ``pump(into:)`` has returned: normally, or, for a client that stopped reading, by closing
    /// the connection, whose unread bytes would otherwise keep it (and a graceful shutdown) waiting forever.
    func finish(_ writer: inout any ResponseBodyWriter, connection: any Channel) async throws {
        if clientStoppedReading {
            try? await connection.close()
        } else {
            try await writer.finish(nil)
        }
    }

    private func written(_ count: Int) {
        state.withLock { state in
            state.queuedBytes -= count
            state.lastWrite = .now
            state.waitingSince = state.queuedBytes > 0 ? .now : nil
        }
    }

    /// Sends keep-alives while the stream is quiet, and returns when an event has waited too long to be written (the
    /// client stopped reading). A closed stream is left to drain its last events, within the same limit.
    private func watch() async {
        let tick = min(limits.keepAliveInterval, limits.stallTimeout) / 4
        while !Task.isCancelled {
            try? await Task.sleep(for: tick)
            let now = ContinuousClock.Instant.now
            enum Step { case none, keepAlive, stalled }
            let step: Step = state.withLock { state in
                if let since = state.waitingSince { return now - since > limits.stallTimeout ? .stalled : .none }
                if state.closeReason != nil { return .none }
                return now - state.lastWrite >= limits.keepAliveInterval ? .keepAlive : .none
            }
            switch step {
            case .none: continue
            case .keepAlive: send(Self.keepAlive)
            case .stalled:
                state.withLock { $0.abandoned = true }
                close(reason: "the client stopped reading its event stream")
                return
            }
        }
    }

    /// An SSE comment: ignored by clients, it keeps proxies from closing a quiet connection.
    static let keepAlive = Array(": keep-alive\n\n".utf8)

    /// A `message` event whose data is one JSON-RPC message (compact JSON: a single line).
    static func message(_ json: [UInt8]) -> [UInt8] {
        event("message", json)
    }

    /// `event: <name>` and `data: <line>` for each line of `data`, then a blank line.
    static func event(_ name: String, _ data: [UInt8]) -> [UInt8] {
        var event: [UInt8] = []
        event.reserveCapacity(data.count + name.utf8.count + 16)
        event.append(contentsOf: "event: \(name)\n".utf8)
        for line in data.split(separator: 0x0A, omittingEmptySubsequences: false) {
            event.append(contentsOf: "data: ".utf8)
            event.append(contentsOf: line)
            event.append(0x0A)
        }
        event.append(0x0A)
        return event
    }
}

/// Hands a response's body writer to the child task that writes, and back. Only one task uses it at a time: the
/// child while it writes, the owner after the child has finished.
private final class WriterBox: @unchecked Sendable {
    var writer: any ResponseBodyWriter
    init(_ writer: any ResponseBodyWriter) { self.writer = writer }
}
