import NIOCore
import NIOPosix
import Synchronization

/// Something outside the process did not answer in time.
public struct DeadlineExceeded: Error, Sendable, Equatable, CustomStringConvertible {
    /// What timed out, as a log names it: `PostgreSQL transaction`, `POST https://tenant.auth0.com/oauth/token`.
    public let operation: String
    /// How long it was given.
    public let timeout: Duration

    /// Creates the error.
    public init(operation: String, timeout: Duration) {
        self.operation = operation
        self.timeout = timeout
    }

    public var description: String { "\(operation) did not finish within \(timeout.secondsText)" }
}

/// Runs work that depends on something outside the process (a database, an HTTP service) with a deadline that does
/// not trust the work to notice it.
///
/// The work runs in a task of its own. When the deadline passes first, the caller gets ``DeadlineExceeded`` at once,
/// the work's task is cancelled, and `onTimeout` runs: the place to discard what the work was using (close its
/// connection), so that a driver which ignores cancellation is unblocked too. A work that ends first cancels the timer.
/// Cancelling the caller cancels the work the same way, with `CancellationError`. A value the work produces after the
/// caller stopped waiting goes to `discardLate` (a connection opened too late, to be closed).
///
/// Why not `withThrowingTaskGroup` and a sleeping child: a task group waits for all its children, so a child that never
/// returns (a promise a driver never completes) keeps the caller waiting for ever, which is the failure this type
/// exists to prevent.
public enum Deadline {
    /// Runs `work` and returns what it returns, or throws ``DeadlineExceeded`` naming `operation` once `timeout` has
    /// passed, whichever comes first.
    public static func run<Value: Sendable>(
        within timeout: Duration, operation: @autoclosure () -> String,
        onTimeout: (@Sendable () -> Void)? = nil, discardLate: (@Sendable (Value) -> Void)? = nil,
        _ work: @escaping @Sendable () async throws -> Value
    ) async throws -> Value {
        let race = Race<Value>(
            timedOut: DeadlineExceeded(operation: operation(), timeout: timeout), discardLate: discardLate)
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                let timer = MultiThreadedEventLoopGroup.singleton.any().scheduleTask(in: TimeAmount(timeout)) {
                    if race.finish(.failure(race.timedOut)) { onTimeout?() }
                }
                let task = Task {
                    let result: Result<Value, any Error>
                    do { result = .success(try await work()) } catch { result = .failure(error) }
                    race.finish(result)
                }
                race.begin(continuation, task: task, timer: timer)
            }
        } onCancel: {
            race.finish(.failure(CancellationError()))
        }
    }
}

/// The state shared by the work, the timer and the caller of one ``Deadline/run(within:operation:onTimeout:_:)``:
/// whichever finishes first resumes the caller; the others find it done.
private final class Race<Value: Sendable>: Sendable {
    private struct State {
        var continuation: CheckedContinuation<Value, any Error>?
        var result: Result<Value, any Error>?
        var task: Task<Void, Never>?
        var timer: Scheduled<Void>?
    }

    let timedOut: DeadlineExceeded
    private let discardLate: (@Sendable (Value) -> Void)?
    private let state = Mutex(State())

    init(timedOut: DeadlineExceeded, discardLate: (@Sendable (Value) -> Void)?) {
        self.timedOut = timedOut
        self.discardLate = discardLate
    }

    /// Called once the task and the timer exist; resumes at once if either finished already.
    func begin(_ continuation: CheckedContinuation<Value, any Error>, task: Task<Void, Never>, timer: Scheduled<Void>) {
        let finished: Result<Value, any Error>? = state.withLock { state in
            if let result = state.result { return result }
            state.continuation = continuation
            state.task = task
            state.timer = timer
            return nil
        }
        guard let finished else { return }
        timer.cancel()
        if case .failure = finished { task.cancel() }
        continuation.resume(with: finished)
    }

    /// Records the outcome if it is the first; `true` when it was.
    @discardableResult
    func finish(_ result: Result<Value, any Error>) -> Bool {
        let (first, continuation, task, timer) = state.withLock { state in
            guard state.result == nil else {
                return (false, CheckedContinuation<Value, any Error>?.none, Task<Void, Never>?.none, Scheduled<Void>?.none)
            }
            state.result = result
            defer { (state.continuation, state.task, state.timer) = (nil, nil, nil) }
            return (true, state.continuation, state.task, state.timer)
        }
        guard first else {
            if case .success(let value) = result { discardLate?(value) }
            return false
        }
        timer?.cancel()
        if case .failure = result { task?.cancel() }
        continuation?.resume(with: result)
        return true
    }
}

extension Duration {
    /// `2.5 s`, `10 s`, `250 ms`: how logs and messages say a timeout.
    public var secondsText: String {
        let (seconds, attoseconds) = components
        let milliseconds = seconds * 1000 + attoseconds / 1_000_000_000_000_000
        if milliseconds < 1000 { return "\(milliseconds) ms" }
        if milliseconds % 1000 == 0 { return "\(milliseconds / 1000) s" }
        return "\(Double(milliseconds) / 1000) s"
    }

    /// The span in seconds, rounded up: what a `Retry-After` header says.
    public var wholeSecondsRoundedUp: Int {
        let (seconds, attoseconds) = components
        return Int(seconds) + (attoseconds > 0 ? 1 : 0)
    }
}
