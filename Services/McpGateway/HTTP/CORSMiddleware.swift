import HTTPTypes
import Hummingbird
import ServiceSupport

/// CORS for browser-based MCP clients (MCP Inspector in Direct mode, web apps).
///
/// - Discovery documents (`/.well-known/*`) are public: `Access-Control-Allow-Origin: *`.
/// - The endpoints a browser client calls with `fetch` (`/register`, `/token`, `/revoke`, `/mcp`, `/sse`,
///   `/messages`) answer allowed origins (``OriginPolicy``) only, by name, with `Vary: Origin`. No
///   `Access-Control-Allow-Credentials`: these endpoints take bearer tokens and client credentials, never cookies.
/// - Preflights (`OPTIONS` with `Access-Control-Request-Method`) are answered here, before routing and
///   authentication: a browser sends them without the `Authorization` header.
/// - Every actual response to an allowed origin, errors included, carries the CORS headers and exposes
///   `Mcp-Session-Id`, `Mcp-Protocol-Version` and `WWW-Authenticate`, or a browser client could not read the session
///   id or the 401 challenge that starts OAuth.
///
/// Pages a browser navigates to (`/`, `/authorize`, `/callback`) get no CORS headers: they are never fetched
/// cross-origin.
struct CORSMiddleware<Context: RequestContext>: RouterMiddleware {
    let origins: OriginPolicy

    static var allowMethods: String { "GET, POST, DELETE, OPTIONS" }
    static var allowHeaders: String {
        "Authorization, Content-Type, Accept, Mcp-Session-Id, Mcp-Protocol-Version, Last-Event-ID, DPoP"
    }
    static var exposeHeaders: String { "Mcp-Session-Id, Mcp-Protocol-Version, WWW-Authenticate, DPoP-Nonce" }
    /// How long a browser may reuse a preflight answer (browsers cap it, Chromium at 2 hours).
    static var maxAge: String { "7200" }

    /// Which CORS rules a path follows.
    enum Scope {
        case publicDocument
        case api
        case none
    }

    static func scope(of path: String) -> Scope {
        if path.hasPrefix("/.well-known/") { return .publicDocument }
        switch path {
        case "/register", "/token", "/revoke", "/mcp", "/sse", "/messages": return .api
        default: return .none
        }
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response)
        async throws -> Response
    {
        let scope = Self.scope(of: request.uri.path)
        guard scope != .none, let origin = request.headers[.origin] else { return try await next(request, context) }
        let allowed = scope == .publicDocument || origins.allows(origin)

        if request.method == .options, request.headers[.accessControlRequestMethod] != nil {
            guard allowed else {
                throw ErrorResponse(
                    status: .forbidden, code: "forbidden_origin",
                    message:
                        "The origin \(origin) may not call this gateway; add it to CORS_ALLOWED_ORIGINS if it is yours")
            }
            var headers = corsHeaders(scope: scope, origin: origin)
            headers[.accessControlAllowMethods] = Self.allowMethods
            headers[.accessControlAllowHeaders] = Self.allowHeaders
            headers[.accessControlMaxAge] = Self.maxAge
            return Response(status: .noContent, headers: headers)
        }

        var response: Response
        do {
            response = try await next(request, context)
        } catch let error as any HTTPResponseError {
            response = try error.response(from: request, context: context)
        }
        if allowed {
            for field in corsHeaders(scope: scope, origin: origin) { response.headers[field.name] = field.value }
        }
        return response
    }

    private func corsHeaders(scope: Scope, origin: String) -> HTTPFields {
        var headers = HTTPFields()
        if scope == .publicDocument {
            headers[.accessControlAllowOrigin] = "*"
        } else {
            headers[.accessControlAllowOrigin] = origin
            headers[.vary] = "Origin"
        }
        headers[.accessControlExposeHeaders] = Self.exposeHeaders
        return headers
    }
}
