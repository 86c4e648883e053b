import Foundation
import HTTPTypes
import Hummingbird
import Logging
import ServiceSupport

/// Per-client-address limits on the endpoints anyone can call without a token: registration, authorization, token and
/// revocation. Each is a token bucket (see ``RateLimiter``); a request beyond it gets a 429 with `Retry-After`.
struct GatewayRateLimits: Sendable {
    var register: RateLimit?
    var authorize: RateLimit?
    var token: RateLimit?
    var revoke: RateLimit?
    /// `TRUSTED_PROXIES`: the load balancers whose `X-Forwarded-For` is believed.
    var trustedProxies: [AddressBlock]

    static func load(from settings: Settings) throws(ConfigurationError) -> GatewayRateLimits {
        func limit(_ name: String, default fallback: String) throws(ConfigurationError) -> RateLimit? {
            let text = settings.string(name, default: fallback)
            guard let parsed = RateLimit.parse(text) else {
                throw ConfigurationError(
                    variable: name, problem: "must be a rate such as 60/min, 10/s or 1000/h, or off ('\(text)' is not)",
                    example: "\(fallback)")
            }
            return parsed
        }
        var proxies: [AddressBlock] = []
        for entry in settings.list("TRUSTED_PROXIES", default: []) {
            guard let block = AddressBlock(entry) else {
                throw ConfigurationError(
                    variable: "TRUSTED_PROXIES",
                    problem: "must list IP addresses or CIDR blocks ('\(entry)' is not one)",
                    example: "10.0.0.0/8,fd00::/8")
            }
            proxies.append(block)
        }
        return GatewayRateLimits(
            register: try limit("RATE_LIMIT_REGISTER", default: "20/min"),
            authorize: try limit("RATE_LIMIT_AUTHORIZE", default: "120/min"),
            token: try limit("RATE_LIMIT_TOKEN", default: "6000/min"),
            revoke: try limit("RATE_LIMIT_REVOKE", default: "6000/min"),
            trustedProxies: proxies)
    }
}

/// Limits one route per client address: attached to the route's own group, so it applies to every spelling of the
/// path the router resolves to that route (`/token/`, `//token`, `/token?x`), not to one literal path. (Hummingbird
/// does not percent-decode paths, nor fold case: `/%74oken` and `/TOKEN` reach no handler, and get 404s.)
///
/// A request beyond the limit gets a 429 with `Retry-After`: a page on `/authorize`, which a browser shows, and an
/// OAuth error elsewhere.
struct RateLimitMiddleware: RouterMiddleware {
    typealias Context = GatewayRequestContext

    /// The route, for logs: `/token`.
    let route: String
    private let limiter: RateLimiter
    private let addresses: ClientAddressResolver
    private let pages: PageRenderer
    /// Whether refusals are pages for a browser.
    private let browser: Bool

    /// The middleware of `route`, or `nil` when its limit is `off`.
    init?(route: String, limit: RateLimit?, trustedProxies: [AddressBlock], pages: PageRenderer, browser: Bool = false) {
        guard let limit else { return nil }
        self.route = route
        self.limiter = RateLimiter(limit: limit)
        self.addresses = ClientAddressResolver(trustedProxies: trustedProxies)
        self.pages = pages
        self.browser = browser
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response)
        async throws -> Response
    {
        guard request.method != .options else { return try await next(request, context) }
        let address = addresses.clientAddress(
            peer: context.channel.remoteAddress, forwardedFor: request.headers[values: .xForwardedFor])
        let now = ProcessInfo.processInfo.systemUptime
        guard let wait = limiter.take(address, now: now) else { return try await next(request, context) }
        let retryAfter = String(max(1, Int(wait.rounded(.up))))
        context.logger.notice(
            "Rate limit reached", metadata: ["client.address": "\(address)", "http.route": "\(route)"])
        if browser {
            return pages.errorPage(
                status: .tooManyRequests, heading: "Too many requests",
                message: "Too many sign-in requests came from your network. Try again in \(retryAfter) seconds.",
                headers: [.retryAfter: retryAfter])
        }
        throw ErrorResponse(
            status: .tooManyRequests, code: "temporarily_unavailable",
            message: "Too many requests from this address; retry after \(retryAfter) seconds",
            headers: [.retryAfter: retryAfter])
    }
}

extension GatewayRateLimits {
    /// `router`, or a group of it behind the limit of `route` when that limit is on.
    func limited(
        _ router: Router<GatewayRequestContext>, route: String, _ limit: RateLimit?, pages: PageRenderer,
        browser: Bool = false
    ) -> RouterGroup<GatewayRequestContext> {
        let group = router.group()
        if let middleware = RateLimitMiddleware(
            route: route, limit: limit, trustedProxies: trustedProxies, pages: pages, browser: browser)
        {
            group.add(middleware: middleware)
        }
        return group
    }
}

/// How the browser-facing middleware recognises a route's path however it is spelled.
enum RoutePath {
    /// The path as the router resolves it: without empty segments (`//`, a trailing `/`).
    static func normalized(_ path: String) -> String {
        "/" + path.split(separator: "/", omittingEmptySubsequences: true).joined(separator: "/")
    }
}

extension HTTPField.Name {
    /// `X-Forwarded-For`.
    static let xForwardedFor = Self("X-Forwarded-For")!
}
