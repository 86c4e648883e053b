import Foundation
import Hummingbird
import NIOCore

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
                group.addTask {
                    await withTaskGroup(of: String??.self) { race in
                        race.addTask { .some(await check.check()) }
                        race.addTask {
                            try? await Task.sleep(for: timeout)
                            return Task.isCancelled ? nil : .some("no answer within 2 s")
                        }
                        let first = await race.next() ?? nil
                        race.cancelAll()
                        return (index, first ?? nil)
                    }
                }
            }
            var results = checks.map { (name: $0.name, problem: String?.none) }
            for await (index, problem) in group { results[index].problem = problem }
            return results
        }
    }

    private static func jsonString(_ text: String) -> String {
        var bytes: [UInt8] = []
        JSONText.appendString(text, to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }
}
