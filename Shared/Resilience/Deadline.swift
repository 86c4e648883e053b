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
/// connection), so that a driver which ignores cancellation is unblocked too. A work that ends first drops its expiry
/// (``DeadlineTimers``).
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
                let timer = DeadlineTimers.shared.add(at: .now() + TimeAmount(timeout)) {
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

/// The state shared by the work, the timer and the caller of one
/// ``Deadline/run(within:operation:onTimeout:discardLate:_:)``:
/// whichever finishes first resumes the caller; the others find it done.
private final class Race<Value: Sendable>: Sendable {
    private struct State {
        var continuation: CheckedContinuation<Value, any Error>?
        var result: Result<Value, any Error>?
        var task: Task<Void, Never>?
        var timer: DeadlineTimers.Timer?
    }

    let timedOut: DeadlineExceeded
    private let discardLate: (@Sendable (Value) -> Void)?
    private let state = Mutex(State())

    init(timedOut: DeadlineExceeded, discardLate: (@Sendable (Value) -> Void)?) {
        self.timedOut = timedOut
        self.discardLate = discardLate
    }

    /// Called once the task and the timer exist; resumes at once if either finished already.
    func begin(
        _ continuation: CheckedContinuation<Value, any Error>, task: Task<Void, Never>, timer: DeadlineTimers.Timer
    ) {
        let finished: Result<Value, any Error>? = state.withLock { state in
            if let result = state.result { return result }
            state.continuation = continuation
            state.task = task
            state.timer = timer
            return nil
        }
        guard let finished else { return }
        DeadlineTimers.shared.remove(timer)
        if case .failure = finished { task.cancel() }
        continuation.resume(with: finished)
    }

    /// Records the outcome if it is the first; `true` when it was.
    @discardableResult
    func finish(_ result: Result<Value, any Error>) -> Bool {
        let (first, continuation, task, timer) = state.withLock { state in
            guard state.result == nil else {
                return (
                    false, CheckedContinuation<Value, any Error>?.none, Task<Void, Never>?.none,
                    DeadlineTimers.Timer?.none
                )
            }
            state.result = result
            defer { (state.continuation, state.task, state.timer) = (nil, nil, nil) }
            return (true, state.continuation, state.task, state.timer)
        }
        guard first else {
            if case .success(let value) = result { discardLate?(value) }
            return false
        }
        if let timer { DeadlineTimers.shared.remove(timer) }
        if case .failure = result { task?.cancel() }
        continuation?.resume(with: result)
        return true
    }
}

/// The timers of every ``Deadline`` running in the process, on an event loop of their own: a call adds its expiry and
/// removes it when it ends, under a lock. The loop is woken when a call's expiry is earlier than every timer it holds,
/// and when a timer fires.
///
/// Why not a scheduled task on an event loop per call, cancelled when the call ends: scheduling from outside the loop
/// wakes it, and so does cancelling. Those were two thread wake-ups for every database statement, while nearly every
/// call ends long before its deadline. Here the loop holds a timer for the earliest expiry only; when it fires it runs
/// what is due and is set again for the next one, if any. Deadlines are mostly now plus one same timeout, so a busy
/// process sets a timer about once per timeout, and one at rest none at all.
///
/// Why a loop of their own: a deadline must come even when the loops that serve requests and databases are busy or
/// stuck (the work it bounds is not trusted), and what a deadline runs (resuming its caller, closing a connection)
/// must not wait behind them.
final class DeadlineTimers: Sendable {
    /// One call's expiry, to remove when the call ends.
    struct Timer: Sendable, Hashable {
        fileprivate let id: UInt64
    }

    private struct Expiry {
        let deadline: NIODeadline
        let fire: @Sendable () -> Void
    }

    private struct State {
        var next: UInt64 = 0
        var expiries: [UInt64: Expiry] = [:]
        /// When the loop's timers scheduled so far fire: one at or before the earliest expiry, and sometimes later
        /// ones, each of which, when it fires, runs what is due then and sets the next timer if none is set.
        var scheduled: Set<NIODeadline> = []

        /// Whether a timer must be set for `deadline`: none fires at or before it (that one would set the next).
        /// Records it as set when so.
        mutating func needsTimer(for deadline: NIODeadline) -> Bool {
            guard !scheduled.contains(where: { $0 <= deadline }) else { return false }
            scheduled.insert(deadline)
            return true
        }
    }

    static let shared = DeadlineTimers(eventLoop: loop.next())

    /// The one thread of ``shared``, for the life of the process.
    private static let loop = MultiThreadedEventLoopGroup(numberOfThreads: 1)

    private let eventLoop: any EventLoop
    private let state = Mutex(State())

    init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    /// Runs `fire` on the event loop at `deadline`, unless ``remove(_:)`` comes first.
    func add(at deadline: NIODeadline, _ fire: @escaping @Sendable () -> Void) -> Timer {
        let (timer, schedule) = state.withLock { state in
            state.next += 1
            state.expiries[state.next] = Expiry(deadline: deadline, fire: fire)
            return (Timer(id: state.next), state.needsTimer(for: deadline))
        }
        if schedule { self.schedule(at: deadline) }
        return timer
    }

    /// The call ended: its expiry is dropped. The loop's timer is left alone (cancelling it would wake the loop).
    func remove(_ timer: Timer) {
        _ = state.withLock { $0.expiries.removeValue(forKey: timer.id) }
    }

    /// How many expiries are waiting (for tests).
    var count: Int { state.withLock { $0.expiries.count } }

    private func schedule(at deadline: NIODeadline) {
        eventLoop.scheduleTask(deadline: deadline) { self.fire(scheduledFor: deadline) }
    }

    private func fire(scheduledFor fired: NIODeadline) {
        let now = NIODeadline.now()
        let (due, next) = state.withLock { state in
            state.scheduled.remove(fired)
            var due: [Expiry] = []
            var earliest: NIODeadline?
            for (id, expiry) in state.expiries {
                if expiry.deadline <= now {
                    due.append(expiry)
                    state.expiries.removeValue(forKey: id)
                } else if earliest.map({ expiry.deadline < $0 }) ?? true {
                    earliest = expiry.deadline
                }
            }
            due.sort { $0.deadline < $1.deadline }
            guard let earliest, state.needsTimer(for: earliest) else { return (due, NIODeadline?.none) }
            return (due, earliest)
        }
        if let next { schedule(at: next) }
        for expiry in due { expiry.fire() }
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
