import NIOCore
import NIOPosix
import Synchronization
import Testing

@testable import Resilience

/// `Deadline.run` does not trust the work it bounds: a work that never returns (and ignores cancellation) still ends
/// the caller's wait at the deadline with `DeadlineExceeded`; the work's task is then cancelled and `onTimeout` runs
/// once; a value produced too late goes to `discardLate`; a cancelled caller gets `CancellationError` at once; the
/// work's own errors pass through; and hundreds of racing deadlines each resolve exactly once.
@Suite("Deadline", .timeLimit(.minutes(1)))
struct DeadlineTests {
    struct WorkFailed: Error, Equatable {
        let code: Int
    }

    @Test func aWorkThatEndsInTimeIsAnsweredAndNothingElseRuns() async throws {
        let timeouts = Counter()
        let discarded = Recorder<Int>()
        let value = try await Deadline.run(
            within: .seconds(3), operation: "quick", onTimeout: { timeouts.increment() },
            discardLate: { discarded.append($0) }
        ) { 42 }
        #expect(value == 42)
        // Past the deadline: the timer was cancelled, so neither callback ever runs. (A deadline of seconds: on a
        // loaded machine even a work that returns at once may wait that long for a thread.)
        try await Task.sleep(for: .milliseconds(3500))
        #expect(timeouts.value == 0)
        #expect(discarded.all.isEmpty)
    }

    @Test func aWorkThatNeverReturnsIsAbandonedAtTheDeadline() async throws {
        let gate = Gate()
        defer { gate.open() }
        let (result, elapsed) = await timed {
            try await Deadline.run(within: .seconds(1), operation: "PostgreSQL transaction") {
                await gate.wait()
                return 1
            }
        }
        #expect(throws: DeadlineExceeded(operation: "PostgreSQL transaction", timeout: .seconds(1))) {
            try result.get()
        }
        #expect(elapsed >= .milliseconds(990))
        #expect(elapsed < .seconds(4))
    }

    @Test func theWorkIsCancelledAndOnTimeoutRunsOnceAtTheDeadline() async throws {
        let gate = Gate()
        defer { gate.open() }
        let cancelled = Counter()
        let timeouts = Counter()
        await #expect(throws: DeadlineExceeded.self) {
            try await Deadline.run(within: .milliseconds(200), operation: "stuck", onTimeout: { timeouts.increment() }) {
                await withTaskCancellationHandler {
                    await gate.wait()
                } onCancel: {
                    cancelled.increment()
                }
            }
        }
        #expect(await eventually { cancelled.value == 1 && timeouts.value == 1 })
        // Not a second time, however long the stuck work stays.
        try await Task.sleep(for: .milliseconds(400))
        #expect(timeouts.value == 1)
        #expect(cancelled.value == 1)
    }

    @Test func aWorkThatChecksCancellationSeesItAfterTheDeadline() async throws {
        let sawCancellation = Counter()
        let ended = Counter()
        await #expect(throws: DeadlineExceeded.self) {
            try await Deadline.run(within: .milliseconds(200), operation: "polling") {
                // Ignores cancellation for a while, then looks (a driver between two blocking calls).
                let started = ContinuousClock.now
                while ContinuousClock.now - started < .milliseconds(600) {
                    try? await Task.sleep(for: .milliseconds(20))
                }
                if Task.isCancelled { sawCancellation.increment() }
                ended.increment()
            }
        }
        #expect(await eventually { ended.value == 1 })
        #expect(sawCancellation.value == 1)
    }

    @Test func aValueProducedAfterTheDeadlineGoesToDiscardLate() async throws {
        let gate = Gate()
        defer { gate.open() }
        let discarded = Recorder<Int>()
        let timeouts = Counter()
        await #expect(throws: DeadlineExceeded.self) {
            try await Deadline.run(
                within: .milliseconds(200), operation: "connect", onTimeout: { timeouts.increment() },
                discardLate: { discarded.append($0) }
            ) {
                await gate.wait()
                return 7
            }
        }
        #expect(discarded.all.isEmpty)
        gate.open()
        #expect(await eventually { discarded.all == [7] })
        try await Task.sleep(for: .milliseconds(200))
        #expect(discarded.all == [7])
        #expect(timeouts.value == 1)
    }

    @Test func aFailureAfterTheDeadlineIsNeitherDiscardedNorThrown() async throws {
        let gate = Gate()
        defer { gate.open() }
        let discarded = Recorder<Int>()
        let ended = Counter()
        await #expect(throws: DeadlineExceeded(operation: "late failure", timeout: .milliseconds(150))) {
            try await Deadline.run(
                within: .milliseconds(150), operation: "late failure", discardLate: { discarded.append($0) }
            ) { () async throws -> Int in
                await gate.wait()
                ended.increment()
                throw WorkFailed(code: 1)
            }
        }
        gate.open()
        #expect(await eventually { ended.value == 1 })
        try await Task.sleep(for: .milliseconds(100))
        #expect(discarded.all.isEmpty)
    }

    @Test func cancellingTheCallerEndsTheWaitAtOnceAndCancelsTheWork() async throws {
        let gate = Gate()
        defer { gate.open() }
        let started = Counter()
        let cancelled = Counter()
        let timeouts = Counter()
        let discarded = Recorder<Int>()
        let caller = Task {
            try await Deadline.run(
                within: .seconds(5), operation: "slow", onTimeout: { timeouts.increment() },
                discardLate: { discarded.append($0) }
            ) {
                await withTaskCancellationHandler {
                    started.increment()
                    await gate.wait()
                } onCancel: {
                    cancelled.increment()
                }
                return 5
            }
        }
        #expect(await eventually { started.value == 1 })
        let cancelledAt = ContinuousClock.now
        caller.cancel()
        await #expect(throws: CancellationError.self) { try await value(of: caller) }
        #expect(ContinuousClock.now - cancelledAt < .seconds(3))
        #expect(await eventually { cancelled.value == 1 })
        // The deadline passes later: it is not a timeout, and the value the work produces at last is discarded.
        try await Task.sleep(for: .milliseconds(5300))
        #expect(timeouts.value == 0)
        gate.open()
        #expect(await eventually { discarded.all == [5] })
    }

    @Test func aCallerCancelledBeforeItAsksGetsCancellationErrorAtOnce() async throws {
        let gate = Gate()
        defer { gate.open() }
        let cancelled = Counter()
        let (result, elapsed) = await timed {
            cancelCurrentTask()
            return try await Deadline.run(within: .seconds(30), operation: "never") {
                await withTaskCancellationHandler {
                    await gate.wait()
                } onCancel: {
                    cancelled.increment()
                }
            }
        }
        #expect(throws: CancellationError.self) { try result.get() }
        #expect(elapsed < .seconds(3))
        #expect(await eventually { cancelled.value == 1 })
    }

    @Test func errorsOfTheWorkPassThroughUnchanged() async throws {
        let timeouts = Counter()
        await #expect(throws: WorkFailed(code: 17)) {
            try await Deadline.run(within: .seconds(5), operation: "failing", onTimeout: { timeouts.increment() }) {
                () async throws -> Int in
                throw WorkFailed(code: 17)
            }
        }
        // A CancellationError of the work's own is its error too, not a timeout.
        await #expect(throws: CancellationError.self) {
            try await Deadline.run(within: .seconds(5), operation: "cancelled inside") { () async throws -> Int in
                throw CancellationError()
            }
        }
        #expect(timeouts.value == 0)
    }

    @Test func theWorkGoesOnAfterTheCallerWasAnswered() async throws {
        // The work runs in a task of its own: the caller is answered at the deadline while the work is still
        // suspended, and the work resumes (and ends) when what it awaited completes.
        let gate = Gate()
        defer { gate.open() }
        let running = Counter()
        await #expect(throws: DeadlineExceeded.self) {
            try await Deadline.run(within: .milliseconds(100), operation: "detached") {
                running.increment()
                await gate.wait()
                running.increment()
            }
        }
        // The work started (on a loaded machine perhaps only after the deadline), and waits for the gate.
        #expect(await eventually { running.value == 1 })
        gate.open()
        #expect(await eventually { running.value == 2 })
    }

    /// 600 deadlines racing their works, timers and callers' cancellations at the same few milliseconds. Each work
    /// ignores cancellation and always produces its number, so for each: exactly one of "returned to the caller" and
    /// "handed to discardLate"; `onTimeout` exactly once per `DeadlineExceeded`; never a timeout for a cancelled
    /// caller. A lost continuation hangs (the time limit fails it); a double resume crashes the process.
    @Test func manyRacingDeadlinesEachResolveExactlyOnce() async throws {
        enum Outcome: Sendable {
            case value(Int)
            case timedOut(Int)
            case cancelled(Int)
        }
        let total = 600
        let discarded = Recorder<Int>()
        let timeoutCalls = Recorder<Int>()
        let outcomes = await withTaskGroup(of: Outcome.self) { group in
            for index in 0..<total {
                group.addTask {
                    let caller = Task { () async throws -> Int in
                        try await Deadline.run(
                            within: .milliseconds(10), operation: "race \(index)",
                            onTimeout: { timeoutCalls.append(index) }, discardLate: { discarded.append($0) }
                        ) {
                            // Ends after 0–20 ms on an event loop, whatever cancellation says.
                            await withCheckedContinuation { continuation in
                                MultiThreadedEventLoopGroup.singleton.any().scheduleTask(
                                    in: .milliseconds(Int64(index % 21))
                                ) { continuation.resume(returning: index) }
                            }
                        }
                    }
                    if index % 3 == 0 {
                        try? await Task.sleep(for: .milliseconds(index % 13))
                        caller.cancel()
                    }
                    do {
                        let answer = try await value(of: caller)
                        #expect(answer == index)
                        return .value(index)
                    } catch let error as DeadlineExceeded {
                        #expect(error == DeadlineExceeded(operation: "race \(index)", timeout: .milliseconds(10)))
                        return .timedOut(index)
                    } catch is CancellationError {
                        #expect(index % 3 == 0)
                        return .cancelled(index)
                    } catch {
                        Issue.record("unexpected \(error)")
                        return .cancelled(-1)
                    }
                }
            }
            var outcomes: [Outcome] = []
            for await outcome in group { outcomes.append(outcome) }
            return outcomes
        }
        #expect(outcomes.count == total)
        var returned = Set<Int>()
        var timedOut = Set<Int>()
        var abandoned = Set<Int>()
        for outcome in outcomes {
            switch outcome {
            case .value(let index): returned.insert(index)
            case .timedOut(let index): timedOut.insert(index); abandoned.insert(index)
            case .cancelled(let index): abandoned.insert(index)
            }
        }
        #expect(returned.count + abandoned.count == total)
        #expect(returned.isDisjoint(with: abandoned))
        // Every abandoned work's value arrives, late, to discardLate; no returned value does.
        #expect(await eventually(within: .seconds(10)) { discarded.all.count >= abandoned.count })
        try await Task.sleep(for: .milliseconds(100))
        #expect(discarded.all.count == abandoned.count)
        #expect(Set(discarded.all) == abandoned)
        #expect(await eventually { timeoutCalls.all.count >= timedOut.count })
        #expect(timeoutCalls.all.count == timedOut.count)
        #expect(Set(timeoutCalls.all) == timedOut)
    }
}

/// How a timeout is written in logs and messages, and in `Retry-After`.
@Suite("Duration in messages")
struct DurationTextTests {
    @Test(arguments: [
        (Duration.milliseconds(250), "250 ms"),
        (.milliseconds(1), "1 ms"),
        (.zero, "0 ms"),
        (.milliseconds(999), "999 ms"),
        (.seconds(1), "1 s"),
        (.seconds(10), "10 s"),
        (.milliseconds(2500), "2.5 s"),
        (.milliseconds(1001), "1.001 s"),
        (.seconds(90), "90 s"),
    ])
    func secondsText(duration: Duration, text: String) {
        #expect(duration.secondsText == text)
    }

    @Test(arguments: [
        (Duration.zero, 0),
        (.nanoseconds(1), 1),
        (.milliseconds(1), 1),
        (.milliseconds(999), 1),
        (.seconds(1), 1),
        (.milliseconds(1001), 2),
        (.milliseconds(2500), 3),
        (.seconds(30), 30),
    ])
    func wholeSecondsRoundedUp(duration: Duration, seconds: Int) {
        #expect(duration.wholeSecondsRoundedUp == seconds)
    }

    @Test func deadlineExceededSaysWhatAndHowLong() {
        let error = DeadlineExceeded(operation: "PostgreSQL transaction", timeout: .seconds(5))
        #expect(error.description == "PostgreSQL transaction did not finish within 5 s")
        #expect(error != DeadlineExceeded(operation: "PostgreSQL transaction", timeout: .seconds(6)))
    }
}

/// The one timer behind every deadline: expiries fire at their time and in order, whatever order they were added in;
/// one removed never fires; and the event loop is woken for the earliest only.
@Suite("Deadline timers", .timeLimit(.minutes(1)))
struct DeadlineTimersTests {
    /// Timers of the test's own, so that other tests' deadlines are not among them.
    func timers() -> DeadlineTimers { DeadlineTimers(eventLoop: MultiThreadedEventLoopGroup.singleton.next()) }

    @Test func expiriesFireInTheOrderOfTheirDeadlinesNotOfTheirAdding() async throws {
        let timers = timers()
        let start = NIODeadline.now()
        let fired = Recorder<(Int, NIODeadline)>()
        // The latest first: each earlier one needs a timer of its own, and a later one is set when an earlier fires.
        // The gaps are a second or more, so that an expiry fired only with a later one's timer shows, even on a loaded
        // machine.
        for milliseconds in [3200, 200, 2200, 1200] {
            _ = timers.add(at: start + .milliseconds(Int64(milliseconds))) {
                fired.append((milliseconds, .now()))
            }
        }
        #expect(await eventually { fired.all.count == 4 })
        #expect(fired.all.map(\.0) == [200, 1200, 2200, 3200])
        for (milliseconds, at) in fired.all {
            #expect(at >= start + .milliseconds(Int64(milliseconds)))
            #expect(at < start + .milliseconds(Int64(milliseconds) + 1000))
        }
        #expect(timers.count == 0)
    }

    @Test func aRemovedExpiryNeverFiresAndTheOthersStillDo() async throws {
        let timers = timers()
        let fired = Recorder<String>()
        let early = timers.add(at: .now() + .milliseconds(100)) { fired.append("early") }
        _ = timers.add(at: .now() + .milliseconds(300)) { fired.append("late") }
        timers.remove(early)
        #expect(timers.count == 1)
        // The timer set for the removed one still fires; it finds nothing due, and sets one for the other.
        #expect(await eventually { fired.all == ["late"] })
        try await Task.sleep(for: .milliseconds(200))
        #expect(fired.all == ["late"])
        #expect(timers.count == 0)
    }

    @Test func callsThatEndInTimeLeaveNothingBehind() async throws {
        let timers = timers()
        let fired = Counter()
        let added = (0..<1000).map { _ in timers.add(at: .now() + .seconds(30)) { fired.increment() } }
        #expect(timers.count == 1000)
        for timer in added { timers.remove(timer) }
        #expect(timers.count == 0)
        #expect(fired.value == 0)
    }

    @Test func aShortDeadlineStartedWhileALongOneWaitsEndsOnTime() async throws {
        let gate = Gate()
        defer { gate.open() }
        let long = Task { try await Deadline.run(within: .seconds(20), operation: "long") { await gate.wait() } }
        defer { long.cancel() }
        try await Task.sleep(for: .milliseconds(50))
        let (result, elapsed) = await timed {
            try await Deadline.run(within: .milliseconds(300), operation: "short") { await gate.wait() }
        }
        #expect(throws: DeadlineExceeded(operation: "short", timeout: .milliseconds(300))) { try result.get() }
        #expect(elapsed >= .milliseconds(290))
        #expect(elapsed < .seconds(3))
    }
}
