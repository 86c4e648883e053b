import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import NIOHTTP1

/// Turns every error into a JSON ``ErrorResponse``: the service's own errors as they are, Hummingbird's `HTTPError`s
/// (unknown route, body too large, undecodable JSON) in the same shape, and anything unexpected into a 500 that is
/// logged with the request id and answered without internals.
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

extension RequestContext {
    /// The id of this request, as logged and returned in `X-Request-Id`: what a user quotes to an operator, who finds
    /// the details in the log.
    public var requestID: String { logger[metadataKey: "hb.request.id"]?.description ?? "unknown" }
}
