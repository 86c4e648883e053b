import Foundation
import HTTPTypes
import Hummingbird
import JWTAuth
import ServiceSupport

/// Guards the MCP endpoints: the `Origin` must be allowed (DNS rebinding protection), then the mode's
/// ``MCPAuthenticator`` must accept the request. The caller is stored in the context.
struct MCPAuthenticationMiddleware: RouterMiddleware {
    typealias Context = GatewayRequestContext
    let origins: OriginPolicy
    let authenticator: any MCPAuthenticator
    let challenge: MCPBearerChallenge

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response)
        async throws -> Response
    {
        if let origin = request.headers[.origin], !origins.allows(origin) {
            throw ErrorResponse(
                status: .forbidden, code: "forbidden_origin",
                message:
                    "Requests from the origin \(origin) are not allowed; add it to CORS_ALLOWED_ORIGINS if it is yours")
        }
        var context = context
        context.caller = try await authenticator.authenticate(request, challenge: challenge)
        return try await next(request, context)
    }
}
