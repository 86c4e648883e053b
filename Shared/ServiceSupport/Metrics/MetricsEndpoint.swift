import Hummingbird
import JWTAuth
import Metrics
import NIOCore
import Prometheus
import Synchronization

/// The Prometheus side of swift-metrics: every service bootstraps it once at start-up, and serves what was recorded at
/// `GET /metrics` in the Prometheus text format.
public enum ServiceMetrics {
    /// Where every metric of the process is kept.
    public static let registry = PrometheusCollectorRegistry()
    private static let bootstrapped = Mutex(false)

    /// Makes swift-metrics record into ``registry`` (once per process; later calls do nothing). Durations (Timers)
    /// become histograms in seconds, with buckets from 1 ms to 10 s.
    public static func bootstrap() {
        let first = bootstrapped.withLock { done in
            defer { done = true }
            return !done
        }
        guard first else { return }
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = [
            .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25),
            .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1),
            .milliseconds(2500), .seconds(5), .seconds(10),
        ]
        MetricsSystem.bootstrap(factory)
    }

    /// Adds `GET /metrics`. With `token` (`METRICS_TOKEN`), a request must carry `Authorization: Bearer <token>`; a
    /// public proxy should not route `/metrics` at all (Prometheus scrapes each instance directly).
    public static func addRoute<Context: RequestContext>(to router: Router<Context>, token: String?) {
        router.get("metrics") { request, _ -> Response in
            if let token {
                let presented = try? BearerCredentials.token(
                    fromAuthorizationHeaders: request.headers[values: .authorization])
                guard let presented, SecretDigest.matches(presented, digest: SecretDigest.hex(token)) else {
                    return Response(
                        status: .unauthorized,
                        headers: [.wwwAuthenticate: #"Bearer realm="metrics""#, .contentType: "text/plain"],
                        body: .init(byteBuffer: ByteBuffer(string: "METRICS_TOKEN is required\n")))
                }
            }
            var bytes: [UInt8] = []
            registry.emit(into: &bytes)
            return Response(
                status: .ok,
                headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8", .cacheControl: "no-store"],
                body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
        }
    }
}
