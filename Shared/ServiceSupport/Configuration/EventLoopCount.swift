import Foundation
import NIOCore
import Synchronization

/// How many event loops a service runs: one per CPU it may run on.
///
/// Every service handles its connections on NIO's shared event loop group (Hummingbird's server, the HTTP clients).
/// NIO sizes that group by the machine's CPUs, or by its container's (the cgroup's CPU set and quota), but not by the
/// process's CPU affinity: a service started with `taskset -c 0`, `numactl`, or pinned by a supervisor through
/// `sched_setaffinity`, still got one loop per CPU of the machine, and the loops took turns on the CPU it has. On one
/// CPU that cost a gateway tool call about a fifth of its CPU time in thread switches (docs/benchmarks.md).
///
/// `NIO_SINGLETON_GROUP_LOOP_COUNT`, NIO's own setting, still wins when it is set.
public enum EventLoopCount {
    private static let matched = Atomic<Bool>(false)

    /// Sizes NIO's shared group by the CPUs this process may run on, when they are fewer than NIO would use. Call it
    /// first thing, before anything uses the group (NIO refuses a change after); later calls do nothing.
    public static func matchCPUAffinity(environment: [String: String] = ProcessInfo.processInfo.environment) {
        guard matched.compareExchange(expected: false, desired: true, ordering: .relaxed).exchanged else { return }
        guard environment["NIO_SINGLETON_GROUP_LOOP_COUNT"] == nil, let count = loopCount(allowedCPUs: allowedCPUs())
        else { return }
        NIOSingletons.groupLoopCountSuggestion = count
    }

    /// The loop count for a process allowed `allowedCPUs` CPUs, when it is below NIO's own count; `nil` otherwise.
    static func loopCount(allowedCPUs: Int?, nioCount: Int = System.coreCount) -> Int? {
        guard let allowedCPUs, allowedCPUs > 0, allowedCPUs < nioCount else { return nil }
        return allowedCPUs
    }

    /// How many CPUs the process's affinity mask allows, where the platform says: on Linux, `Cpus_allowed` of
    /// `/proc/self/status`, a hexadecimal mask in comma-separated groups (`ff`, `00000000,00000001`).
    static func allowedCPUs() -> Int? {
        #if os(Linux)
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
        return allowedCPUs(status: status)
        #else
        return nil
        #endif
    }

    /// The CPUs of `Cpus_allowed` in the text of a `/proc/<pid>/status`; `nil` when it has none that reads.
    static func allowedCPUs(status: String) -> Int? {
        guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix("Cpus_allowed:") }) else {
            return nil
        }
        var count = 0
        for digit in line.dropFirst("Cpus_allowed:".count) where digit != "," && !digit.isWhitespace {
            guard let value = digit.hexDigitValue else { return nil }
            count += value.nonzeroBitCount
        }
        return count > 0 ? count : nil
    }
}
