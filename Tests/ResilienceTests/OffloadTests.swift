import Dispatch
import Resilience
import Testing

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// `Offload.run` runs blocking work on NIO's blocking pool, not on Swift's cooperative pool (one thread per core):
/// blocking works that outnumber the cores still leave tasks free to run, and the work's value and error come back.
@Suite("Offload", .timeLimit(.minutes(1)))
struct OffloadTests {
    struct WorkFailed: Error, Equatable {}

    /// The name of the thread this runs on.
    static func threadName() -> String {
        var name = [UInt8](repeating: 0, count: 64)
        #if os(Linux)
            let file = open("/proc/thread-self/comm", O_RDONLY)
            guard file >= 0 else { return "?" }
            defer { close(file) }
            let count = read(file, &name, name.count - 1)
            name = Array(name.prefix(max(0, count)))
        #else
            name.withUnsafeMutableBufferPointer { buffer in
                _ = buffer.withMemoryRebound(to: CChar.self) { pthread_getname_np(pthread_self(), $0.baseAddress!, $0.count) }
            }
        #endif
        return String(decoding: name.prefix { $0 != 0 }, as: UTF8.self).trimmingSuffix()
    }

    @Test func theWorkRunsOnABlockingPoolThread() async throws {
        let name = try await Offload.run { Self.threadName() }
        // NIO names the singleton blocking pool's threads `SGLTN-TP-#n`.
        #expect(name.contains("TP-#"), "ran on \(name)")
    }

    @Test func blockingWorksBeyondTheCoresDoNotStallTasks() async throws {
        // Eight works block until a task releases them. Run on the cooperative pool (two threads here), they would
        // hold every thread, the releasing task would never run, and each would give up after 5 s.
        let semaphore = DispatchSemaphore(value: 0)
        let count = 8
        let released = try await withThrowingTaskGroup(of: Bool.self) { group in
            for _ in 0..<count {
                group.addTask { try await Offload.run { semaphore.wait(timeout: .now() + 5) == .success } }
            }
            group.addTask {
                try await Task.sleep(for: .milliseconds(100))
                for _ in 0..<count { semaphore.signal() }
                return true
            }
            var released = 0
            for try await ok in group where ok { released += 1 }
            return released
        }
        #expect(released == count + 1)
    }

    @Test func theValueAndTheErrorComeBack() async throws {
        #expect(try await Offload.run { 6 * 7 } == 42)
        await #expect(throws: WorkFailed()) {
            try await Offload.run { () throws -> Int in throw WorkFailed() }
        }
    }
}

extension String {
    fileprivate func trimmingSuffix() -> String {
        var text = self
        while text.last?.isWhitespace == true { text.removeLast() }
        return text
    }
}

/// `DependencyUnavailable`: what a 503 says and when to retry.
@Suite("DependencyUnavailable")
struct DependencyUnavailableTests {
    @Test func retryAfterIsAtLeastOneSecond() {
        #expect(DependencyUnavailable("the database", detail: "x").retryAfter == 2)
        #expect(DependencyUnavailable("the database", detail: "x", retryAfter: 0).retryAfter == 1)
        #expect(DependencyUnavailable("the database", detail: "x", retryAfter: -3).retryAfter == 1)
        #expect(DependencyUnavailable("the database", detail: "x", retryAfter: 7).retryAfter == 7)
    }

    @Test func descriptionNamesTheDependencyAndTheDetail() {
        let error = DependencyUnavailable("TodosAPI", detail: "GET /todos did not finish within 5 s")
        #expect(error.description == "TodosAPI is unavailable: GET /todos did not finish within 5 s")
    }
}
