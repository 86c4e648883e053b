import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import NIOHTTP1
import Resilience

/// Turns every error into a JSON ``ErrorResponse``: the service's own errors as they are, Hummingbird's `HTTPError`s
/// (unknown route, body too large, undecodable JSON) in the same shape, a dependency that failed or timed out
/// (``DependencyUnavailable``) into a 503 with `Retry-After`, and anything unexpected into a 500; both logged with the
/// request id and answered without internals.
public struct ErrorRenderingMiddleware<Context: RequestContext>: RouterMiddleware {
    /// Creates the middleware.
    public init() {}

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response)
        async throws -> Response
    {
        do {
            return try await next(request, context)
        } catch let error as ErrorResponse {
            throw error
        } catch let error as DependencyUnavailable {
            throw ErrorResponse.unavailable(error, context: context)
        } catch let error as HTTPError {
            throw ErrorResponse(error)
        } catch let error as HTTPParserError {
            // A body whose framing is broken (a bad chunk size, an unknown transfer coding): the client's fault, seen
            // only once the handler reads the body. The connection cannot be trusted to continue.
            context.logger.notice("Malformed request body", metadata: ["error": "\(error)"])
            throw ErrorResponse(
                status: .badRequest, code: "invalid_request", message: "The request body is not valid HTTP/1.1 framing",
                headers: [.connection: "close"])
        } catch let error as any HTTPResponseError {
            // Any other error that knows its status (e.g. NIOTooManyBytesError): same status, JSON body.
            throw ErrorResponse(HTTPError(error.status))
        } catch {
            let requestID = context.requestID
            context.logger.error("Unexpected error", metadata: ["error": "\(String(reflecting: error))"])
            throw ErrorResponse(
                status: .internalServerError, code: "server_error",
                message: "An unexpected error occurred (request id \(requestID))")
        }
    }
}

extension ErrorResponse {
    /// 503 `temporarily_unavailable` with `Retry-After`, for a dependency that failed or timed out; the detail goes to
    /// the log, with the request id the answer quotes.
    public static func unavailable(_ error: DependencyUnavailable, context: some RequestContext) -> ErrorResponse {
        context.logger.warning(
            "A dependency is unavailable", metadata: ["dependency": "\(error.dependency)", "error": "\(error.detail)"])
        return ErrorResponse(
            status: .serviceUnavailable, code: "temporarily_unavailable",
            message:
                "\(error.dependency.prefix(1).uppercased() + error.dependency.dropFirst()) is unavailable; retry in "
                + "\(error.retryAfter) s (request id \(context.requestID))",
            headers: [.retryAfter: String(error.retryAfter)])
    }
}

extension RequestContext {
    /// The id of this request, as logged and returned in `X-Request-Id`: what a user quotes to an operator, who finds
    /// the details in the log.
    public var requestID: String { logger[metadataKey: "hb.request.id"]?.description ?? "unknown" }
}
