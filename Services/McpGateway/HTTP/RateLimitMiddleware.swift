import Foundation
import HTTPTypes
import Hummingbird
import Logging
import ServiceSupport

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
