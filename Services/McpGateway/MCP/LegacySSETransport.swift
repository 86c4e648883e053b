import Foundation
import Logging
import MCP

/// The server side of one session of the HTTP+SSE transport of MCP 2024-11-05, as an SDK `Transport`.
///
/// The client opens `GET /sse` and keeps it open; the gateway writes every server-to-client message to it as an SSE
/// `message` event. The client POSTs its messages to `/messages?sessionId=…`; ``deliver(_:)`` hands them to the SDK's
/// `Server`, and ``send(_:)`` (called by the server, and by the tool fast path) queues its answers for the stream.
actor LegacySSETransport: Transport {
    nonisolated let logger: Logger
    private let incoming: AsyncThrowingStream<Data, any Error>
    private let incomingContinuation: AsyncThrowingStream<Data, any Error>.Continuation
    /// The SSE events to write, in order; finished when the session ends, which ends the GET response.
    nonisolated let events: AsyncStream<Data>
    private let eventsContinuation: AsyncStream<Data>.Continuation

    /// Whether the session is still open: false once disconnected, or once the client stopped reading its stream.
    private(set) var isOpen = true

    /// At most this many events wait for a client that does not read its stream; one more ends the session rather than
    /// silently dropping a response the client waits for.
    static let bufferLimit = 1024

    init(logger: Logger) {
        self.logger = logger
        (incoming, incomingContinuation) = AsyncThrowingStream.makeStream()
        (events, eventsContinuation) = AsyncStream.makeStream(bufferingPolicy: .bufferingNewest(Self.bufferLimit))
    }

    func connect() async throws {}

    /// Ends the session: no more messages in, and the event stream (so the GET response) finishes.
    func disconnect() async {
        close()
    }

    private func close() {
        isOpen = false
        incomingContinuation.finish()
        eventsContinuation.finish()
    }

    /// A message from the server to the client, written to the stream as a `message` event.
    func send(_ data: Data) async throws {
        enqueue(Self.event("message", data))
    }

    private func enqueue(_ event: Data) {
        guard isOpen else { return }
        if case .dropped = eventsContinuation.yield(event) {
            logger.warning("Legacy SSE client does not read its stream; ending the session")
            close()
        }
    }

    func receive() -> AsyncThrowingStream<Data, any Error> { incoming }

    /// A message the client POSTed, for the SDK's server.
    func deliver(_ data: Data) {
        guard isOpen else { return }
        incomingContinuation.yield(data)
    }

    /// The first event: where the client POSTs its messages.
    func announce(endpoint: String) {
        enqueue(Self.event("endpoint", Data(endpoint.utf8)))
    }

    /// An SSE comment, which clients ignore and which lets the gateway notice a client that went away.
    func keepAlive() {
        enqueue(Data(": keep-alive\n\n".utf8))
    }

    /// `event: <name>` and the data, one `data:` line per line of it (JSON-RPC messages are one line).
    static func event(_ name: String, _ data: Data) -> Data {
        var event = Data("event: \(name)\n".utf8)
        let text = String(decoding: data, as: UTF8.self)
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            event.append(contentsOf: "data: ".utf8)
            event.append(contentsOf: line.utf8)
            event.append(0x0A)
        }
        event.append(0x0A)
        return event
    }
}
