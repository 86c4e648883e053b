import Foundation
import Hummingbird
import JSON
import NIOCore
import Synchronization

/// One thing a service needs before it can serve: its database answering, its keys fetched.
public struct ReadinessCheck: Sendable {
    public let name: String
    /// `nil` when ready; otherwise what is missing, for the operator.
    public let check: @Sendable () async -> String?

    public init(_ name: String, check: @escaping @Sendable () async -> String?) {
        self.name = name
        self.check = check
    }
}

/// `GET <path>`: readiness, for load balancers and orchestrators (Kubernetes `readinessProbe`). `200` with
/// `{"status":"ready","checks":{…}}` when every check passes, else `503` with `Retry-After` and what failed. Checks run
/// concurrently, each for at most two seconds: an unreachable database makes the instance not ready, not the probe
/// hang. `/health` stays the liveness check: it answers as long as the process does.
public enum Readiness {
    static let timeout: Duration = .seconds(2)

    public static func addRoute<Context: RequestContext>(
        to router: Router<Context>, path: RouterPath = "ready", checks: [ReadinessCheck]
    ) {
        router.get(path) { _, _ -> Response in
            let results = await evaluate(checks)
            let ready = results.allSatisfy { $0.problem == nil }
            var body: [UInt8] = Array(#"{"status":"#.utf8)
            body += Array((ready ? #""ready""# : #""not_ready""#).utf8)
            body += Array(#","checks":{"#.utf8)
            for (index, result) in results.enumerated() {
                if index > 0 { body.append(UInt8(ascii: ",")) }
                body += Array(jsonString(result.name).utf8) + [UInt8(ascii: ":")]
                body += Array(jsonString(result.problem ?? "ok").utf8)
            }
            body += Array("}}".utf8)
            var headers: HTTPFields = [.contentType: "application/json", .cacheControl: "no-store"]
            if !ready { headers[.retryAfter] = "5" }
            return Response(
                status: ready ? .ok : .serviceUnavailable, headers: headers,
                body: .init(byteBuffer: ByteBuffer(bytes: body)))
        }
    }

    static func evaluate(_ checks: [ReadinessCheck]) async -> [(name: String, problem: String?)] {
        await withTaskGroup(of: (Int, String?).self) { group in
            for (index, check) in checks.enumerated() {
                group.addTask { (index, await answer(of: check)) }
            }
            var results = checks.map { (name: $0.name, problem: String?.none) }
            for await (index, problem) in group { results[index].problem = problem }
            return results
        }
    }

    /// The check's answer, or "no answer" after ``timeout``. The check runs in a task of its own, so that one stuck
    /// in a call that ignores cancellation (a query on a connection that went dark) cannot hold the probe.
    private static func answer(of check: ReadinessCheck) async -> String? {
        await withCheckedContinuation { (continuation: CheckedContinuation<String?, Never>) in
            let first = FirstAnswer(continuation)
            let work = Task { first.answer(await check.check()) }
            Task {
                try? await Task.sleep(for: timeout)
                first.answer("no answer within 2 s")
                work.cancel()
            }
        }
    }

    /// Resumes a continuation with the first answer given; later ones are dropped.
    private final class FirstAnswer: Sendable {
        private let continuation: Mutex<CheckedContinuation<String?, Never>?>

        init(_ continuation: CheckedContinuation<String?, Never>) {
            self.continuation = Mutex(continuation)
        }

        func answer(_ problem: String?) {
            continuation.withLock { continuation in
                defer { continuation = nil }
                return continuation
            }?.resume(returning: problem)
        }
    }

    private static func jsonString(_ text: String) -> String {
        var bytes: [UInt8] = []
        JSONValue.writeString(text, to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }
}
