import Foundation
import Resilience
import ServiceSupport

/// How long the gateway waits for what is outside its process (docs/operations.md). Every call to the database, to
/// TodosAPI, to the provider and to a client's metadata document has one of these deadlines, covering the whole answer,
/// body included; when it passes the request is answered at once (a tool error, a 503 with `Retry-After`, a page) and
/// nothing keeps running behind it.
struct DependencyTimeouts: Sendable, Equatable {
    /// `GATEWAY_DATABASE_TIMEOUT`: one database call, waiting for a connection included (the server's own statement
    /// and lock timeouts are derived from it, see ``DatabaseTimeouts``).
    var database: Duration = .seconds(5)
    /// `API_TIMEOUT`: one request to TodosAPI, from asking for a connection to the last byte of the answer.
    var api: Duration = .seconds(10)
    /// `API_CONNECT_TIMEOUT`: opening a connection to TodosAPI.
    var apiConnect: Duration = .seconds(3)
    /// `UPSTREAM_TIMEOUT`: how long a request waits for the provider: discovery, keys, the code exchange, userinfo,
    /// token exchange, GitHub's API, and a tool call waiting for a refresh.
    var upstream: Duration = .seconds(10)
    /// `UPSTREAM_REFRESH_TIMEOUT`: how long a refresh, once sent, waits for the provider's answer, whether or not the
    /// tool calls that wanted it are still waiting. Longer than ``upstream``, so that a slow answer is still stored: the
    /// provider has rotated the refresh token by then, and the old one must not be sent again.
    var upstreamRefresh: Duration = .seconds(12)
    /// `CLIENT_METADATA_TIMEOUT`: fetching a client's metadata document, name resolution included.
    var clientMetadata: Duration = .seconds(5)
    /// `UPSTREAM_REUSE_INTERVAL`: how long the provider accepts a refresh token again after rotating it (Auth0's Reuse
    /// Interval, Okta's grace period), when the operator states it; checked at start-up against ``requiredReuseInterval``.
    var upstreamReuseInterval: Duration?

    /// How long one refresh holds a grant against every other instance (``UpstreamTokenService/Timeouts/lease``): its
    /// own deadline, time to store the answer, and a margin for taking the lease. An instance that dies during a
    /// refresh is taken over after this.
    var refreshLease: Duration {
        upstreamRefresh + UpstreamTokenService.Timeouts.storeBudget + UpstreamTokenService.Timeouts.leaseMargin
    }

    /// The provider must accept a rotated refresh token again for longer than this, or a refresh whose answer was lost
    /// (a process killed, a connection reset) signs the user out: the next attempt, from any instance, sends the same
    /// refresh token at most a lease later and waits at most a refresh deadline.
    var requiredReuseInterval: Duration { refreshLease + upstreamRefresh }

    static func load(from settings: Settings) throws(ConfigurationError) -> DependencyTimeouts {
        func seconds(_ name: String, _ fallback: Duration, in range: ClosedRange<TimeInterval>)
            throws(ConfigurationError) -> Duration
        {
            .milliseconds(
                Int64(
                    (try settings.duration(name, default: fallback / .seconds(1), in: range) * 1000).rounded()))
        }
        var timeouts = DependencyTimeouts()
        timeouts.database = try seconds("GATEWAY_DATABASE_TIMEOUT", timeouts.database, in: 0.5...60)
        timeouts.api = try seconds("API_TIMEOUT", timeouts.api, in: 0.5...300)
        timeouts.apiConnect = try seconds("API_CONNECT_TIMEOUT", timeouts.apiConnect, in: 0.1...60)
        timeouts.upstream = try seconds("UPSTREAM_TIMEOUT", timeouts.upstream, in: 0.5...120)
        timeouts.upstreamRefresh = try seconds(
            "UPSTREAM_REFRESH_TIMEOUT", max(timeouts.upstreamRefresh, timeouts.upstream), in: 0.5...120)
        guard timeouts.upstreamRefresh >= timeouts.upstream else {
            throw ConfigurationError(
                variable: "UPSTREAM_REFRESH_TIMEOUT",
                problem: "must be at least UPSTREAM_TIMEOUT (\(timeouts.upstream.secondsText)): a refresh must be "
                    + "able to outlast the requests waiting for it",
                example: "\(Int((timeouts.upstream / .seconds(1)).rounded(.up)) + 2)s")
        }
        timeouts.clientMetadata = try seconds("CLIENT_METADATA_TIMEOUT", timeouts.clientMetadata, in: 0.5...60)
        if settings.string("UPSTREAM_REUSE_INTERVAL") != nil {
            let reuse = try seconds("UPSTREAM_REUSE_INTERVAL", .zero, in: 0...86_400)
            guard reuse > timeouts.requiredReuseInterval else {
                let required = timeouts.requiredReuseInterval.wholeSecondsRoundedUp + 1
                throw ConfigurationError(
                    variable: "UPSTREAM_REUSE_INTERVAL",
                    problem: "is \(reuse.secondsText), but a refresh whose answer is lost is sent again up to "
                        + "\(timeouts.requiredReuseInterval.secondsText) later (UPSTREAM_REFRESH_TIMEOUT twice plus 4 s): "
                        + "set the provider's reuse interval (Auth0: Refresh Token Rotation > Reuse Interval; Okta: "
                        + "grace period) to at least \(required) s and say so here",
                    example: "\(max(required, 30))s")
            }
            timeouts.upstreamReuseInterval = reuse
        }
        return timeouts
    }
}
