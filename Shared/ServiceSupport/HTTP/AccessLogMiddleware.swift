import Foundation
import HTTPTypes
import Hummingbird
import Logging

/// Logs one line per request: method, path (never the query string, which can carry codes), status and duration,
/// with the request id; and returns the request id in `X-Request-Id` so that a user can quote it.
public struct AccessLogMiddleware<Context: RequestContext>: RouterMiddleware {
    /// Creates the middleware.
    public init() {}

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response)
        async throws -> Response
    {
        let started = ContinuousClock.now
        let requestID = context.logger[metadataKey: "hb.request.id"]?.description
        do {
            var response = try await next(request, context)
            if let requestID { response.headers[.requestID] = requestID }
            log(request, status: response.status, since: started, context: context)
            return response
        } catch {
            let status = (error as? any HTTPResponseError)?.status ?? .internalServerError
            log(request, status: status, since: started, context: context)
            if let requestID, var rendered = error as? ErrorResponse {
                rendered.headers[.requestID] = requestID
                throw rendered
            }
            throw error
        }
    }

    private func log(
        _ request: Request, status: HTTPResponse.Status, since started: ContinuousClock.Instant,
        context: Context
    ) {
        let elapsed = started.duration(to: .now)
        // Microseconds, written as milliseconds with two decimals (no `String(format:)`: this runs for every request).
        let micros = elapsed.components.seconds * 1_000_000 + elapsed.components.attoseconds / 1_000_000_000_000
        let hundredths = (micros + 5) / 10
        let fraction = hundredths % 100
        let duration = "\(hundredths / 100).\(fraction < 10 ? "0" : "")\(fraction)"
        context.logger.info(
            "\(request.method) \(request.uri.path) \(status.code)",
            metadata: ["http.status": "\(status.code)", "http.duration_ms": "\(duration)"])
    }
}

extension HTTPField.Name {
    /// `X-Request-Id`.
    public static let requestID = Self("X-Request-Id")!
}
