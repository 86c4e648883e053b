import NIOCore
import NIOHTTPTypes
import Synchronization

/// Tells long-lived responses (event streams) at once that their client closed the connection.
///
/// Without it a stream learns of a departed client only when a write fails, which takes two keep-alive intervals (the
/// first write after the close is accepted by the kernel and answered with a reset); meanwhile the stream keeps its
/// place among the user's streams, and its session refuses a new one. The server allows half-closed connections, so
/// a client's close arrives as `inputClosed` on a connection still open for writing: on an HTTP/1.1 connection busy
/// with a streaming response, that means the client has gone.
final class ConnectionCloseNotifier: ChannelInboundHandler, RemovableChannelHandler, @unchecked Sendable {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart

    private struct State {
        var closed = false
        var callbacks: [@Sendable () -> Void] = []
    }

    private let state = Mutex(State())

    /// Calls `callback` once the client has closed the connection (at once if it already has).
    func onClose(_ callback: @escaping @Sendable () -> Void) {
        let closed = state.withLock { state in
            if !state.closed { state.callbacks.append(callback) }
            return state.closed
        }
        if closed { callback() }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.fireChannelRead(data)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event { closed() }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        closed()
        context.fireChannelInactive()
    }

    private func closed() {
        let callbacks = state.withLock { state in
            state.closed = true
            defer { state.callbacks = [] }
            return state.callbacks
        }
        for callback in callbacks { callback() }
    }
}

extension Channel {
    /// Calls `callback` when the client closes this connection; nothing when the pipeline has no
    /// ``ConnectionCloseNotifier`` (route tests without a network).
    func onClientClose(_ callback: @escaping @Sendable () -> Void) async {
        guard let notifier = try? await pipeline.handler(type: ConnectionCloseNotifier.self).get() else { return }
        notifier.onClose(callback)
    }
}
