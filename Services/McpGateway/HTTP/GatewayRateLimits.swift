import Foundation
import Hummingbird
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
