import NIOCore
import NIOPosix
import Resilience
import Synchronization
import Testing

/// `SingleFlight` runs one work at a time per key for all its concurrent callers, and cannot get stuck: a caller that
/// gives up (its own wait, or its task cancelled) leaves without cancelling the work the others wait for; a work that
/// never returns frees its key after `workTimeout`; a result (success or failure) is never handed to callers that come
/// after the work ended; and every caller is answered exactly once, even under hundreds of racing callers.
@Suite("SingleFlight", .timeLimit(.minutes(1)))
struct SingleFlightTests {
    struct WorkFailed: Error, Equatable {
        let code: Int
    }

    /// A caller asking `flight` for `key`'s value, in a task of its own (to cancel it, or to await it with
    /// `value(of:)`, which fails rather than hangs if the caller is never answered). `operation` is `refresh <key>`.
    private func caller<Value: Sendable>(
        _ flight: SingleFlight<String, Value>, _ key: String, wait: Duration = .seconds(20),
        workTimeout: Duration = .seconds(30), _ work: @escaping @Sendable () async throws -> Value
    ) -> Task<Value, any Error> {
        Task {
            try await flight.value(
                for: key, waitingAtMost: wait, operation: "refresh \(key)", workTimeout: workTimeout, work)
        }
    }

    /// `count` callers for `key`; `entered` counts those that called.
    private func callers(
        _ count: Int, of flight: SingleFlight<String, Int>, key: String, entered: Counter,
        work: @escaping @Sendable () async throws -> Int
    ) -> [Task<Int, any Error>] {
        (0..<count).map { _ in
            Task {
                entered.increment()
                return try await flight.value(
                    for: key, waitingAtMost: .seconds(20), operation: "refresh \(key)", workTimeout: .seconds(30), work)
            }
        }
    }

    @Test func concurrentCallersForOneKeyShareOneWork() async throws {
        let flight = SingleFlight<String, Int>()
        let gate = Gate()
        defer { gate.open() }
        let runs = Counter()
        let entered = Counter()
        let tasks = callers(20, of: flight, key: "token", entered: entered) {
            let run = runs.increment()
            await gate.wait()
            return 100 + run
        }
        #expect(await eventually { entered.value == 20 })
        // A caller registers without suspending after it entered: this margin only absorbs thread scheduling.
        try await Task.sleep(for: .milliseconds(200))
        #expect(flight.isRunning("token"))
        gate.open()
        for task in tasks { #expect(try await value(of: task) == 101) }
        #expect(runs.value == 1)
        #expect(flight.runningCount == 0)
    }

    @Test func differentKeysRunSeparatelyAndAtTheSameTime() async throws {
        let flight = SingleFlight<String, String>()
        let started = Recorder<String>()
        // Each work ends only once both have started: run one after the other, they would time out.
        func work(_ key: String) -> @Sendable () async throws -> String {
            {
                started.append(key)
                let both = await eventually(within: .seconds(5)) { started.all.count == 2 }
                return both ? "value of \(key)" : "alone"
            }
        }
        let a = caller(flight, "a", work("a"))
        let b = caller(flight, "b", work("b"))
        let (valueA, valueB) = try await (value(of: a), value(of: b))
        #expect(valueA == "value of a")
        #expect(valueB == "value of b")
        #expect(Set(started.all) == ["a", "b"])
        #expect(flight.runningCount == 0)
    }

    @Test func aWaiterWhoseWaitPassesLeavesAndTheWorkGoesOnForTheOthers() async throws {
        let flight = SingleFlight<String, Int>()
        let gate = Gate()
        defer { gate.open() }
        let runs = Counter()
        let cancelled = Counter()
        let work: @Sendable () async throws -> Int = {
            runs.increment()
            await withTaskCancellationHandler {
                await gate.wait()
            } onCancel: {
                cancelled.increment()
            }
            return 9
        }
        let patient = caller(flight, "k", work)
        #expect(await eventually { runs.value == 1 })
        let (impatient, elapsed) = await timed {
            try await flight.value(
                for: "k", waitingAtMost: .seconds(1), operation: "exchange", workTimeout: .seconds(30), work)
        }
        #expect(throws: DeadlineExceeded(operation: "exchange", timeout: .seconds(1))) { try impatient.get() }
        #expect(elapsed >= .milliseconds(990))
        #expect(elapsed < .seconds(4))
        // The work was neither cancelled nor started again, and still runs for the patient caller.
        try await Task.sleep(for: .milliseconds(100))
        #expect(cancelled.value == 0)
        #expect(flight.isRunning("k"))
        gate.open()
        #expect(try await value(of: patient) == 9)
        #expect(runs.value == 1)
        #expect(cancelled.value == 0)
        #expect(flight.runningCount == 0)
    }

    @Test func aWorkOutlivesAllItsCallersAndItsResultIsNotKept() async throws {
        let flight = SingleFlight<String, Int>()
        let gate = Gate()
        defer { gate.open() }
        let runs = Counter()
        let ended = Counter()
        await #expect(throws: DeadlineExceeded(operation: "refresh k", timeout: .milliseconds(150))) {
            try await value(
                of: caller(flight, "k", wait: .milliseconds(150)) {
                    runs.increment()
                    await gate.wait()
                    ended.increment()
                    return 1
                })
        }
        // Nobody waits any more, yet the work goes on (it may store what it got).
        #expect(flight.isRunning("k"))
        gate.open()
        #expect(await eventually { ended.value == 1 && !flight.isRunning("k") })
        let next = try await value(
            of: caller(flight, "k") {
                runs.increment()
                return 2
            })
        #expect(next == 2)
        #expect(runs.value == 2)
    }

    @Test func aCancelledWaiterLeavesAtOnceAndTheOthersAreUnaffected() async throws {
        let flight = SingleFlight<String, Int>()
        let gate = Gate()
        defer { gate.open() }
        let runs = Counter()
        let cancelled = Counter()
        let entered = Counter()
        let tasks = callers(3, of: flight, key: "k", entered: entered) {
            runs.increment()
            await withTaskCancellationHandler {
                await gate.wait()
            } onCancel: {
                cancelled.increment()
            }
            return 3
        }
        #expect(await eventually { entered.value == 3 && runs.value == 1 })
        try await Task.sleep(for: .milliseconds(100))
        let cancelledAt = ContinuousClock.now
        tasks[0].cancel()
        await #expect(throws: CancellationError.self) { try await value(of: tasks[0]) }
        #expect(ContinuousClock.now - cancelledAt < .seconds(3))
        gate.open()
        #expect(try await value(of: tasks[1]) == 3)
        #expect(try await value(of: tasks[2]) == 3)
        #expect(runs.value == 1)
        #expect(cancelled.value == 0)
    }

    @Test func aCallerCancelledBeforeItAsksLeavesAtOnce() async throws {
        let flight = SingleFlight<String, Int>()
        let gate = Gate()
        defer { gate.open() }
        let entered = Counter()
        let others = callers(1, of: flight, key: "k", entered: entered) {
            await gate.wait()
            return 4
        }
        #expect(await eventually { flight.isRunning("k") })
        let (result, elapsed) = await timed {
            cancelCurrentTask()
            return try await flight.value(
                for: "k", waitingAtMost: .seconds(20), operation: "k", workTimeout: .seconds(30)
            ) { 0 }
        }
        #expect(throws: CancellationError.self) { try result.get() }
        #expect(elapsed < .seconds(3))
        gate.open()
        #expect(try await value(of: others[0]) == 4)
    }

    @Test func afterAFailureTheNextCallerStartsANewWork() async throws {
        let flight = SingleFlight<String, Int>()
        let runs = Counter()
        let work: @Sendable () async throws -> Int = {
            let run = runs.increment()
            if run == 1 { throw WorkFailed(code: 1) }
            return run
        }
        await #expect(throws: WorkFailed(code: 1)) { try await value(of: caller(flight, "k", work)) }
        #expect(!flight.isRunning("k"))
        #expect(try await value(of: caller(flight, "k", work)) == 2)
        // A success is not kept either.
        #expect(try await value(of: caller(flight, "k", work)) == 3)
        #expect(runs.value == 3)
        #expect(flight.runningCount == 0)
    }

    @Test func aFailureReachesEveryWaiterOfThatWork() async throws {
        let flight = SingleFlight<String, Int>()
        let gate = Gate()
        defer { gate.open() }
        let runs = Counter()
        let entered = Counter()
        let tasks = callers(5, of: flight, key: "k", entered: entered) {
            runs.increment()
            await gate.wait()
            throw WorkFailed(code: 5)
        }
        #expect(await eventually { entered.value == 5 })
        try await Task.sleep(for: .milliseconds(200))
        gate.open()
        for task in tasks {
            await #expect(throws: WorkFailed(code: 5)) { try await value(of: task) }
        }
        #expect(runs.value == 1)
    }

    @Test func aWorkThatNeverReturnsFreesItsKeyAfterWorkTimeout() async throws {
        let flight = SingleFlight<String, Int>()
        let gate = Gate()
        defer { gate.open() }
        let cancelled = Counter()
        let stuck: @Sendable () async throws -> Int = {
            await withTaskCancellationHandler {
                await gate.wait()
            } onCancel: {
                cancelled.increment()
            }
            return -1
        }
        let started = ContinuousClock.now
        let waiters = (0..<3).map { _ in caller(flight, "k", workTimeout: .seconds(1), stuck) }
        for waiter in waiters {
            await #expect(throws: DeadlineExceeded(operation: "refresh k", timeout: .seconds(1))) {
                try await value(of: waiter)
            }
        }
        #expect(ContinuousClock.now - started >= .milliseconds(990))
        #expect(ContinuousClock.now - started < .seconds(4))
        #expect(!flight.isRunning("k"))
        #expect(flight.runningCount == 0)
        #expect(await eventually { cancelled.value == 1 })
        // The key is free: the next caller starts a work of its own at once, not behind the stuck one.
        let runs = Counter()
        let fresh = try await value(
            of: caller(flight, "k") {
                runs.increment()
                return 8
            })
        #expect(fresh == 8)
        #expect(runs.value == 1)
        // The stuck work, when it finally returns, does not disturb the key.
        let gate2 = Gate()
        defer { gate2.open() }
        let pending = caller(flight, "k") {
            await gate2.wait()
            return 10
        }
        #expect(await eventually { flight.isRunning("k") })
        gate.open()
        try await Task.sleep(for: .milliseconds(200))
        #expect(flight.isRunning("k"))
        gate2.open()
        #expect(try await value(of: pending) == 10)
    }

    @Test func runningCountFollowsTheWorks() async throws {
        let flight = SingleFlight<String, Int>()
        let gates = ["a": Gate(), "b": Gate(), "c": Gate()]
        defer { for gate in gates.values { gate.open() } }
        #expect(flight.runningCount == 0)
        let tasks = gates.map { key, gate in
            caller(flight, key) {
                await gate.wait()
                return 1
            }
        }
        #expect(await eventually { flight.runningCount == 3 })
        #expect(flight.isRunning("a") && flight.isRunning("b") && flight.isRunning("c"))
        #expect(!flight.isRunning("d"))
        gates["b"]!.open()
        #expect(await eventually { flight.runningCount == 2 })
        #expect(!flight.isRunning("b"))
        for gate in gates.values { gate.open() }
        for task in tasks { _ = try await value(of: task) }
        #expect(flight.runningCount == 0)
    }

    /// 400 callers on 4 keys, with waits, work durations and work timeouts of the same few milliseconds, and a third of
    /// the callers cancelled at random moments. Each caller is answered once (a lost one hangs until the time limit;
    /// a double resume crashes the process) with its own key's value, `DeadlineExceeded` or `CancellationError`, and
    /// no work is left running.
    @Test func manyRacingCallersAreEachAnsweredOnceWithTheirKeysValue() async throws {
        let flight = SingleFlight<String, String>()
        let runs = Counter()
        let total = 400
        let answered = await withTaskGroup(of: Bool.self) { group in
            for index in 0..<total {
                group.addTask {
                    let key = "key\(index % 4)"
                    let caller = Task {
                        try await flight.value(
                            for: key, waitingAtMost: .milliseconds(Int64(5 + index % 17)), operation: key,
                            workTimeout: .milliseconds(Int64(5 + index % 11))
                        ) {
                            let run = runs.increment()
                            // Ends after 0–15 ms whatever cancellation says.
                            await withCheckedContinuation { continuation in
                                MultiThreadedEventLoopGroup.singleton.any().scheduleTask(
                                    in: .milliseconds(Int64(run % 16))
                                ) { continuation.resume() }
                            }
                            return "\(key) run \(run)"
                        }
                    }
                    if index % 3 == 0 {
                        try? await Task.sleep(for: .milliseconds(index % 7))
                        caller.cancel()
                    }
                    do {
                        let answer = try await value(of: caller)
                        #expect(answer.hasPrefix("\(key) run "))
                    } catch let error as DeadlineExceeded {
                        #expect(error.operation == key)
                    } catch is CancellationError {
                        #expect(index % 3 == 0)
                    } catch let error as NoAnswer {
                        Issue.record("caller \(index) got \(error)")
                    } catch {
                        Issue.record("unexpected \(error)")
                    }
                    return true
                }
            }
            var answered = 0
            for await _ in group { answered += 1 }
            return answered
        }
        #expect(answered == total)
        #expect(await eventually { flight.runningCount == 0 })
        #expect(runs.value >= 4)
    }
}
