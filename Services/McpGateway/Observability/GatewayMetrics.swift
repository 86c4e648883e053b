import Foundation
import Metrics
import ServiceSupport

/// The gateway's own metrics, beside the HTTP ones every service records (`http_server_*`). All go through
/// swift-metrics to the Prometheus registry served at `/metrics`. Every label takes a few fixed values: no user, client
/// or token ever becomes a label.
enum GatewayMetrics {
    /// `oauth_token_requests_total{grant_type, outcome}`: outcome `issued`, or the OAuth error code.
    static func tokenRequest(grantType: String, outcome: String) {
        let grantType = ["authorization_code", "refresh_token", "none"].contains(grantType) ? grantType : "other"
        counter("oauth_token_requests_total", [("grant_type", grantType), ("outcome", outcome)]).increment()
    }

    /// `oauth_refresh_token_reuse_total`: refresh tokens presented again after their grace (each revoked a grant).
    static func refreshReuse() { counter("oauth_refresh_token_reuse_total", []).increment() }

    /// `oauth_code_replays_total`: authorization codes presented twice (each revoked a grant).
    static func codeReplay() { counter("oauth_code_replays_total", []).increment() }

    enum UpstreamRefreshOutcome: String {
        case refreshed
        /// The provider refused (`invalid_grant`): the grant was revoked.
        case refused
        /// The provider was unreachable or failed: the grant was kept.
        case failed
        /// Another instance (or task) held the refresh; its result was used.
        case joined
    }

    /// `upstream_token_refreshes_total{outcome}`.
    static func upstreamRefresh(_ outcome: UpstreamRefreshOutcome) {
        counter("upstream_token_refreshes_total", [("outcome", outcome.rawValue)]).increment()
    }

    /// `client_metadata_document_fetches_total{outcome}`: `ok`, or why the document could not be used.
    static func metadataDocumentFetch(outcome: String) {
        counter("client_metadata_document_fetches_total", [("outcome", outcome)]).increment()
    }

    /// `mcp_sessions_open`: the sessions this instance holds.
    static func sessionsOpen(_ count: Int) { gauge("mcp_sessions_open").record(count) }

    /// `gateway_database_operation_duration_seconds{backend, operation}`.
    static func databaseOperation(backend: String, operation: String, duration: Duration) {
        timer("gateway_database_operation_duration_seconds", [("backend", backend), ("operation", operation)])
            .record(duration)
    }

    /// What the gateway depends on, as `dependency_failures_total` labels it.
    enum Dependency: String {
        case database
        case provider
        case api
        case clientMetadata = "client_metadata"
    }

    /// `dependency_failures_total{dependency, reason}`: calls that got no usable answer, by `timeout` (the deadline
    /// passed) or `unavailable` (refused, reset, closed, 5xx). A rising count is what an operator is paged for.
    static func dependencyFailure(_ dependency: Dependency, timedOut: Bool) {
        counter(
            "dependency_failures_total",
            [("dependency", dependency.rawValue), ("reason", timedOut ? "timeout" : "unavailable")]
        ).increment()
    }

    // Handles are made once per label set and kept.

    private struct Key: Hashable {
        let name: String
        let labels: [String]

        init(_ name: String, _ labels: [(String, String)]) {
            self.name = name
            self.labels = labels.flatMap { [$0.0, $0.1] }
        }
    }

    private static let counters = MetricHandles<Key, Counter>()
    private static let timers = MetricHandles<Key, Metrics.Timer>()
    private static let gauges = MetricHandles<String, Gauge>()

    private static func counter(_ name: String, _ labels: [(String, String)]) -> Counter {
        counters.handle(Key(name, labels)) { Counter(label: name, dimensions: labels) }
    }

    private static func timer(_ name: String, _ labels: [(String, String)]) -> Metrics.Timer {
        timers.handle(Key(name, labels)) { Metrics.Timer(label: name, dimensions: labels) }
    }

    private static func gauge(_ name: String) -> Gauge {
        gauges.handle(name) { Gauge(label: name) }
    }
}
