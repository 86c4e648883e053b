import Foundation
import HTTPTypes
import Hummingbird
import JWTAuth
import ServiceSupport

/// Guards the MCP endpoints: the `Origin` must be allowed (DNS rebinding protection), a browser request from another
/// site without an `Origin` is refused, then the mode's ``MCPAuthenticator`` must accept the request. The caller is
/// stored in the context.
///
/// The second rule matters where a credential rides along by itself: behind Cloudflare Access the browser sends the
/// Access cookie with any request to the gateway, so a page on another site could open `GET /sse` (an `<img>`, a
/// link) as the user. Browsers mark such requests `Sec-Fetch-Site: cross-site` (or `same-site`) and send no `Origin`
/// on them; MCP clients that are not browsers send neither header.
struct MCPAuthenticationMiddleware: RouterMiddleware {
    typealias Context = GatewayRequestContext
    let origins: OriginPolicy
    let authenticator: any MCPAuthenticator
    let challenge: MCPBearerChallenge
    static let fetchSite = HTTPField.Name("Sec-Fetch-Site")!

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response)
        async throws -> Response
    {
        if let origin = request.headers[.origin], !origins.allows(origin) {
            throw ErrorResponse(
                status: .forbidden, code: "forbidden_origin",
                message:
                    "Requests from the origin \(origin) are not allowed; add it to CORS_ALLOWED_ORIGINS if it is yours")
        }
        if request.headers[.origin] == nil, let site = request.headers[Self.fetchSite]?.lowercased(),
            site == "cross-site" || site == "same-site"
        {
            throw ErrorResponse(
                status: .forbidden, code: "forbidden_origin",
                message: "Requests from other sites are not allowed here; a browser client must send its Origin")
        }
        var context = context
        var caller = try await authenticator.authenticate(request, challenge: challenge)
        // A W3C trace context sent as HTTP headers follows the tool calls to TodosAPI, unless the MCP request carries
        // its own in `_meta`.
        caller.trace = TraceContext(request)
        context.caller = caller
        return try await next(request, context)
    }
}
