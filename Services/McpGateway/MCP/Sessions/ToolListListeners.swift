import Synchronization

/// The `subscriptions/listen` streams (2026-07-28) that asked for `toolsListChanged`, each with its subscription id.
final class ToolListListeners: Sendable {
    private let state = Mutex<(next: UInt64, streams: [UInt64: (EventStream, JSONRPCID)])>((0, [:]))

    /// Registers `stream`; the number ``remove(_:)`` takes when it ends.
    func add(_ stream: EventStream, subscription: JSONRPCID) -> UInt64 {
        state.withLock { state in
            state.next += 1
            state.streams[state.next] = (stream, subscription)
            return state.next
        }
    }

    func remove(_ number: UInt64) { state.withLock { _ = $0.streams.removeValue(forKey: number) } }

    var all: [(EventStream, JSONRPCID)] { state.withLock { Array($0.streams.values) } }
}
