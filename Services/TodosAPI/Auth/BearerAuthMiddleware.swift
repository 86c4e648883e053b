import Hummingbird
import JWTAuth
import ServiceSupport

/// Verifies the bearer token of every request that passes through it and stores the verified token in the context.
/// Failures answer 400/401/503 with an RFC 6750 challenge; scopes are checked by each route.
struct BearerAuthMiddleware: RouterMiddleware {
    typealias Context = TodosRequestContext
    let verifier: JWTVerifier

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response)
        async throws -> Response
    {
        var context = context
        do {
            context.token = try await verifier.verify(try request.bearerToken())
        } catch {
            throw ErrorResponse(error, realm: TodosAPIConfiguration.realm)
        }
        return try await next(request, context)
    }
}
