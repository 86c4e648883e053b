import NIOPosix

/// Work that holds a thread for long (generating an RSA key takes tens of milliseconds in a release build and seconds
/// in a debug one) runs on NIO's blocking pool, not on Swift's cooperative pool. That pool has one thread per core:
/// two keys generated at once on a two-core machine would stall every other task, and with them every deadline's
/// work, which then times out for no fault of what it waited for.
public enum Offload {
    /// Runs `work` on a thread of `NIOThreadPool.singleton` and returns what it returns.
    public static func run<Value: Sendable>(_ work: @escaping @Sendable () throws -> Value) async throws -> Value {
        try await NIOThreadPool.singleton.runIfActive(work)
    }
}
