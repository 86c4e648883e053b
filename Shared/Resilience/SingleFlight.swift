import NIOCore
import NIOPosix
import Synchronization

/// Work that concurrent callers need the same result of (a token refresh, a key set, a document), done once at a time
/// per key, that cannot get stuck:
///
/// - The work runs in a task of its own, under a deadline of its own (`workTimeout`): when it passes, the waiters get
///   ``DeadlineExceeded`` and the key is free again, even if the work never returns.
/// - Each caller waits at most its own `wait`. A caller that gives up (its deadline, or its task cancelled) leaves: the
///   work goes on, for the others and for whatever it stores. So a work may outlive every caller, up to `workTimeout`.
/// - Once the work has ended, successfully or not, the next caller starts afresh: a failure is never handed to callers
///   that come after it.
public final class SingleFlight<Key: Hashable & Sendable, Value: Sendable>: Sendable {
    private struct Waiter {
        let continuation: CheckedContinuation<Value, any Error>
        var timer: Scheduled<Void>?
    }

    private struct Flight {
        let id: UInt64
        var waiters: [UInt64: Waiter] = [:]
    }

    private struct State {
        var flights: [Key: Flight] = [:]
        var lastID: UInt64 = 0

        mutating func nextID() -> UInt64 {
            lastID &+= 1
            return lastID
        }
    }

    private let state = Mutex(State())

    /// Creates an empty set of flights.
    public init() {}

    /// How many works are running.
    public var runningCount: Int { state.withLock { $0.flights.count } }

    /// Whether a work runs for `key`.
    public func isRunning(_ key: Key) -> Bool { state.withLock { $0.flights[key] != nil } }

    /// The result of the work running for `key`, or of `work`, started now when none runs.
    ///
    /// - Parameters:
    ///   - wait: How long this caller waits for the result.
    ///   - operation: What the work is, as ``DeadlineExceeded`` names it.
    ///   - workTimeout: How long a work started by this call may run.
    public func value(
        for key: Key, waitingAtMost wait: Duration, operation: @autoclosure () -> String, workTimeout: Duration,
        _ work: @escaping @Sendable () async throws -> Value
    ) async throws -> Value {
        let operation = operation()
        let waiterID = state.withLock { $0.nextID() }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                let started: UInt64? = state.withLock { state in
                    if state.flights[key] != nil {
                        state.flights[key]?.waiters[waiterID] = Waiter(continuation: continuation)
                        return nil
                    }
                    var flight = Flight(id: state.nextID())
                    flight.waiters[waiterID] = Waiter(continuation: continuation)
                    state.flights[key] = flight
                    return flight.id
                }
                let timer = MultiThreadedEventLoopGroup.singleton.any().scheduleTask(in: TimeAmount(wait)) {
                    self.leave(key, waiterID, DeadlineExceeded(operation: operation, timeout: wait))
                }
                let kept = state.withLock { state in
                    guard state.flights[key]?.waiters[waiterID] != nil else { return false }
                    state.flights[key]?.waiters[waiterID]?.timer = timer
                    return true
                }
                if !kept { timer.cancel() }
                if Task.isCancelled { leave(key, waiterID, CancellationError()) }
                if let flightID = started {
                    Task {
                        let result: Result<Value, any Error>
                        do {
                            result = .success(
                                try await Deadline.run(within: workTimeout, operation: operation, work))
                        } catch {
                            result = .failure(error)
                        }
                        self.complete(key, flightID, result)
                    }
                }
            }
        } onCancel: {
            leave(key, waiterID, CancellationError())
        }
    }

    /// One caller stops waiting; the work goes on.
    private func leave(_ key: Key, _ waiterID: UInt64, _ error: any Error) {
        let waiter = state.withLock { $0.flights[key]?.waiters.removeValue(forKey: waiterID) }
        guard let waiter else { return }
        waiter.timer?.cancel()
        waiter.continuation.resume(throwing: error)
    }

    /// The work of flight `flightID` ended: every waiter gets its result, and the key is free.
    private func complete(_ key: Key, _ flightID: UInt64, _ result: Result<Value, any Error>) {
        let waiters: [Waiter] = state.withLock { state in
            guard let flight = state.flights[key], flight.id == flightID else { return [] }
            state.flights[key] = nil
            return Array(flight.waiters.values)
        }
        for waiter in waiters {
            waiter.timer?.cancel()
            waiter.continuation.resume(with: result)
        }
    }
}
