import Foundation
import Synchronization

/// A session of the protocol revisions that have them: 2025-03-26 to 2025-11-25 over Streamable HTTP (`/mcp`, opened
/// by `initialize`), and 2024-11-05 over HTTP+SSE (`/sse`, opened by the stream itself). 2026-07-28 has none.
///
/// A session is small: who opened it, the revision it speaks, when it was last used, and at most one event stream.
/// It holds no messages: responses are written to the request that asked (or, on `/sse`, to the bounded stream).
final class MCPSession: Sendable {
    enum Transport: Sendable {
        case streamableHTTP
        case legacySSE
    }

    let id: String
    /// The user who opened it; nobody else finds it.
    let owner: String
    let revision: ProtocolRevision
    let transport: Transport
    /// The end of its lifetime (`MCP_SESSION_LIFETIME` after `initialize`).
    let expiresAt: Date

    private struct State {
        var lastUsed: Date
        var stream: EventStream?
        var inbox: AsyncStream<LegacySSEEndpoint.Pending>.Continuation?
        var closeReason: String?
    }

    private let state: Mutex<State>

    init(id: String, owner: String, revision: ProtocolRevision, transport: Transport, now: Date, expiresAt: Date) {
        self.id = id
        self.owner = owner
        self.revision = revision
        self.transport = transport
        self.expiresAt = expiresAt
        self.state = Mutex(State(lastUsed: now))
    }

    var lastUsed: Date { state.withLock { $0.lastUsed } }
    var isClosed: Bool { state.withLock { $0.closeReason != nil } }

    /// Whether an event stream of this session is open: the session is then in use, whatever ``lastUsed`` says.
    var isStreaming: Bool { state.withLock { $0.stream?.isOpen ?? false } }

    func touch(_ now: Date) { state.withLock { $0.lastUsed = now } }

    /// Attaches the session's one event stream; `false` when the session has an open one already, or is closed.
    func attach(_ stream: EventStream) -> Bool {
        state.withLock { state in
            guard state.closeReason == nil, state.stream?.isOpen != true else { return false }
            state.stream = stream
            return true
        }
    }

    /// The open event stream, if any.
    var stream: EventStream? { state.withLock { $0.stream?.isOpen == true ? $0.stream : nil } }

    /// Where `/messages` hands requests to the `/sse` stream that answers them.
    func setInbox(_ inbox: AsyncStream<LegacySSEEndpoint.Pending>.Continuation) {
        state.withLock { $0.inbox = inbox }
    }

    /// Hands a request to the session's `/sse` stream; `false` once the session has ended.
    func submit(_ pending: LegacySSEEndpoint.Pending) -> Bool {
        state.withLock { state in
            guard state.closeReason == nil, let inbox = state.inbox else { return false }
            if case .enqueued = inbox.yield(pending) { return true }
            return false
        }
    }

    /// Ends the session, its stream and the requests waiting for it.
    func close(reason: String) {
        let (stream, inbox) = state.withLock { state in
            guard state.closeReason == nil else {
                return (EventStream?.none, AsyncStream<LegacySSEEndpoint.Pending>.Continuation?.none)
            }
            state.closeReason = reason
            return (state.stream, state.inbox)
        }
        stream?.close(reason: "the session ended: \(reason)")
        inbox?.finish()
    }
}
