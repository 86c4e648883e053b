import Synchronization

/// A work that ignores cancellation: `wait()` returns only once `open()` was called (before or after), the way a
/// driver's promise that is never completed keeps its awaiter. Tests open it at their end so that no task leaks.
final class Gate: Sendable {
    private struct State {
        var opened = false
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    private let state = Mutex(State())

    /// Suspends until the gate is open; does not end on cancellation.
    func wait() async {
        await withCheckedContinuation { continuation in
            let now = state.withLock { state in
                if state.opened { return true }
                state.waiters.append(continuation)
                return false
            }
            if now { continuation.resume() }
        }
    }

    /// Lets every current and future `wait()` return.
    func open() {
        let waiters = state.withLock { state in
            state.opened = true
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    /// How many are suspended in `wait()`.
    var waiting: Int { state.withLock { $0.waiters.count } }
}

/// A thread-safe counter.
final class Counter: Sendable {
    private let count = Atomic<Int>(0)

    @discardableResult
    func increment() -> Int { count.add(1, ordering: .relaxed).newValue }

    var value: Int { count.load(ordering: .relaxed) }
}

/// A thread-safe list of what callbacks received.
final class Recorder<Element: Sendable>: Sendable {
    private let elements = Mutex<[Element]>([])

    func append(_ element: Element) { elements.withLock { $0.append(element) } }

    var all: [Element] { elements.withLock { $0 } }
}

/// Polls `condition` every 10 ms until it holds or `timeout` passes; whether it held. For effects that happen on
/// another thread just after the call under test returned (a callback, a counter going down).
func eventually(within timeout: Duration = .seconds(5), _ condition: () -> Bool) async -> Bool {
    let end = ContinuousClock.now + timeout
    while ContinuousClock.now < end {
        if condition() { return true }
        try? await Task.sleep(for: .milliseconds(10))
    }
    return condition()
}

/// A call under test did not answer at all: a continuation it lost.
struct NoAnswer: Error, CustomStringConvertible {
    let limit: Duration
    var description: String { "no answer within \(limit)" }
}

/// The value of `task`, or ``NoAnswer`` when it has none within `limit`: a continuation the code under test lost fails
/// the test instead of hanging the whole run (a time limit cannot end a test suspended on it).
func value<T: Sendable>(of task: Task<T, any Error>, within limit: Duration = .seconds(20)) async throws -> T {
    let once = ResumeOnce<T>()
    return try await withCheckedThrowingContinuation { continuation in
        once.continuation.withLock { $0 = continuation }
        let timer = Task {
            // Cancelled: the task answered.
            guard (try? await Task.sleep(for: limit)) != nil else { return }
            once.resume(with: .failure(NoAnswer(limit: limit)))
        }
        Task {
            let result = await task.result
            once.resume(with: result)
            timer.cancel()
        }
    }
}

/// A continuation resumed by the first of several racers; the others find it gone.
private final class ResumeOnce<T: Sendable>: Sendable {
    let continuation = Mutex<CheckedContinuation<T, any Error>?>(nil)

    func resume(with result: Result<T, any Error>) { continuation.withLock { $0.take() }?.resume(with: result) }
}

/// Runs `body` in a task of its own and returns what it returns, or throws ``NoAnswer`` after `limit`.
func answer<T: Sendable>(
    within limit: Duration = .seconds(20), _ body: @escaping @Sendable () async throws -> T
) async throws -> T {
    try await value(of: Task { try await body() }, within: limit)
}

/// How long `body` took (run as by ``answer(within:_:)``), and what it returned or threw.
func timed<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) async -> (Result<T, any Error>, Duration) {
    let started = ContinuousClock.now
    let result: Result<T, any Error>
    do { result = .success(try await answer(body)) } catch { result = .failure(error) }
    return (result, ContinuousClock.now - started)
}

/// Cancels the current task: what a caller whose client went away looks like when it reaches the code under test.
func cancelCurrentTask() {
    withUnsafeCurrentTask { $0?.cancel() }
}
