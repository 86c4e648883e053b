import HTTPTypes
import Hummingbird
import Logging
import Metrics
import Synchronization

/// The first middleware of every service: it puts the request id (and the W3C trace id, when the request carries a
/// `traceparent`) into the request's logger, answers with `X-Request-Id` so that a user can quote it, and, once the
/// response is known, writes an access line (`info`: method, path (never the query string, which can carry codes),
/// status and duration) and records the request in the HTTP metrics.
///
/// The metrics (see ``HTTPMetrics``) are by route pattern (`/api/todos/:id`, not each id), method and status.
public struct AccessLogMiddleware<Context: RequestContext>: RouterMiddleware {
    private let metrics: HTTPMetrics

    /// Creates the middleware; its metrics go to `metrics`.
    public init(metrics: HTTPMetrics = .shared) {
        self.metrics = metrics
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response)
        async throws -> Response
    {
        let started = ContinuousClock.now
        var context = context
        if let trace = TraceContext(request) {
            context.logger[metadataKey: "trace.id"] = "\(trace.traceID)"
        }
        let requestID = context.logger[metadataKey: "hb.request.id"]?.description
        do {
            var response = try await next(request, context)
            if let requestID { response.headers[.requestID] = requestID }
            finish(request, status: response.status, since: started, context: context)
            return response
        } catch {
            let status = (error as? any HTTPResponseError)?.status ?? .internalServerError
            finish(request, status: status, since: started, context: context)
            if let requestID, var rendered = error as? ErrorResponse {
                rendered.headers[.requestID] = requestID
                throw rendered
            }
            throw error
        }
    }

    private func finish(
        _ request: Request, status: HTTPResponse.Status, since started: ContinuousClock.Instant, context: Context
    ) {
        let elapsed = started.duration(to: .now)
        metrics.record(
            route: context.endpointPath ?? "unmatched", method: request.method, status: status.code, duration: elapsed)
        guard context.logger.logLevel <= .info else { return }
        let line = AccessLine(
            method: request.method.rawValue, path: request.uri.path, status: Int(status.code),
            microseconds: elapsed.components.seconds * 1_000_000 + elapsed.components.attoseconds / 1_000_000_000_000)
        // The services' own handler takes the line as it is (this runs for every request); another handler gets it
        // through swift-log, the same message and metadata.
        if let handler = context.logger.handler as? ServiceLogHandler {
            handler.logAccess(line)
        } else {
            context.logger.info("\(line.message)", metadata: line.metadata)
        }
    }
}

/// `http_server_requests_total` and `http_server_request_duration_seconds`, by route, method and status. The
/// swift-metrics handles are made once per combination and kept: a request costs one dictionary lookup.
public final class HTTPMetrics: Sendable {
    /// The metrics of the process's HTTP server.
    public static let shared = HTTPMetrics()

    private struct Key: Hashable {
        let route: String
        let method: HTTPRequest.Method
        let status: Int
    }

    private struct Handles: Sendable {
        let requests: Counter
        let duration: Metrics.Timer
    }

    private let handles = MetricHandles<Key, Handles>()

    public init() {}

    /// Methods are labelled as they are only when standard: a client inventing methods must not invent series.
    private static let knownMethods: Set<HTTPRequest.Method> = [
        .get, .head, .post, .put, .delete, .options, .patch, .connect, .trace,
    ]

    func record(route: String, method: HTTPRequest.Method, status: Int, duration: Duration) {
        let method = Self.knownMethods.contains(method) ? method : HTTPRequest.Method("OTHER")!
        let key = Key(route: route, method: method, status: status)
        let handles = handles.handle(key) {
            Handles(
                requests: Counter(
                    label: "http_server_requests_total",
                    dimensions: [("route", route), ("method", method.rawValue), ("status", String(status))]),
                duration: Metrics.Timer(
                    label: "http_server_request_duration_seconds",
                    dimensions: [("route", route), ("method", method.rawValue)]))
        }
        handles.requests.increment()
        handles.duration.record(duration)
    }
}

extension HTTPField.Name {
    /// `X-Request-Id`.
    public static let requestID = Self("X-Request-Id")!
}
