import HTTPTypes
import Hummingbird
import Logging
import NIOHTTP1
import Resilience
import ServiceSupport

/// The pages a browser reaches during a sign-in (`/authorize`, `/callback`) answer their failures with a page, not
/// with JSON: a dependency that did not answer (the database, the provider) is a 503 page with `Retry-After`, and an
/// unexpected error a 500 page; both show the request id, under which the log has the details.
struct BrowserErrorPages: RouterMiddleware {
    typealias Context = GatewayRequestContext
    let pages: PageRenderer
    /// The paths whose answers a browser shows.
    static let paths: Set<String> = ["/authorize", "/callback"]

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response)
        async throws -> Response
    {
        guard Self.paths.contains(RoutePath.normalized(request.uri.path)) else {
            return try await next(request, context)
        }
        do {
            return try await next(request, context)
        } catch let error as DependencyUnavailable {
            context.logger.warning(
                "A dependency is unavailable", metadata: ["dependency": "\(error.dependency)", "error": "\(error.detail)"])
            return pages.errorPage(
                status: .serviceUnavailable, heading: "Signing in is unavailable for a moment",
                message: "The gateway could not reach \(error.dependency). Try again in \(error.retryAfter) seconds.",
                requestID: context.requestID, headers: [.retryAfter: String(error.retryAfter)])
        } catch let error as ErrorResponse {
            throw error
        } catch let error as any HTTPResponseError {
            throw error
        } catch let error as HTTPParserError {
            // Broken framing: the client's fault, a 400 (ErrorRenderingMiddleware).
            throw error
        } catch {
            context.logger.error("Unexpected error", metadata: ["error": "\(String(reflecting: error))"])
            return pages.errorPage(
                status: .internalServerError, heading: "Something went wrong",
                message: "The gateway could not handle this sign-in step. Try again from your application.",
                requestID: context.requestID)
        }
    }
}
