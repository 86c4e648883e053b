import Foundation
import HTTPTypes
import Hummingbird
import JWTAuth
import ServiceSupport

/// Guards `/mcp`: the `Origin` must be allowed (DNS rebinding protection), and the request must carry a gateway access
/// token bound to this resource in the `Authorization` header. Failures are a 401 whose challenge points MCP clients
/// at the protected resource metadata (RFC 9728), where they find how to sign in.
struct MCPAuthenticationMiddleware: RouterMiddleware {
    typealias Context = GatewayRequestContext
    let configuration: GatewayConfiguration
    let origins: OriginPolicy
    let store: any GatewayStore
    let clock: any WallClock

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response)
        async throws -> Response
    {
        if let origin = request.headers[.origin], !origins.allows(origin) {
            throw ErrorResponse(
                status: .forbidden, code: "forbidden_origin",
                message: "Requests from the origin \(origin) are not allowed; add it to ALLOWED_ORIGINS if it is yours")
        }
        var context = context
        context.caller = try await authenticate(request)
        return try await next(request, context)
    }

    private func authenticate(_ request: Request) async throws -> MCPCaller {
        if request.queryParameters.contains("access_token") {
            throw challenge(
                BearerAuthError.malformedAuthorization.with(
                    message: "Access tokens in the query string are refused: send 'Authorization: Bearer <token>'"))
        }
        let token: String
        do { token = try request.bearerToken() } catch { throw challenge(error) }
        guard token.hasPrefix(GatewayTokenFormat.accessTokenPrefix),
            let (record, grant) = try await store.accessToken(digest: SecretDigest.hex(token), now: clock.now)
        else {
            throw challenge(BearerAuthError.rejected("The access token is invalid, expired or revoked"))
        }
        guard AuthorizationRequestValidator.sameResource(record.resource, configuration.resource) else {
            throw challenge(BearerAuthError.invalidAudience)
        }
        return MCPCaller(grant: grant, scope: record.scope)
    }

    private func challenge(_ error: BearerAuthError) -> ErrorResponse {
        ErrorResponse(error, scope: GatewayScopes.default, resourceMetadata: configuration.resourceMetadataURL)
    }
}
