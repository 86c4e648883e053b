import Foundation
import JSON
import JWTAuth
import Logging
import NIOCore
import NIOHTTP1
import ServiceLifecycle
import ServiceSupport

/// Calls TodosAPI for a ``ToolCaller``, over kept-alive connections (``KeepAliveHTTPClient``) with timeouts, and turns every answer into a
/// typed outcome, so that no tool reads an HTTP status. The payloads stay the API's own JSON (checked for the shape
/// the API promises): the tools hand them to the client as structured content unchanged.
struct TodosAPIClient: TodosAPI, Service {
    let http: KeepAliveHTTPClient
    /// `API_TIMEOUT`: one request, from asking for a connection to the last byte of the answer.
    var timeout: TimeAmount = .seconds(10)
    /// Where failures are described in full: a tool result tells the user what happened, never the API's address or
    /// a connection error.
    var logger = Logger(label: "McpGateway.TodosAPIClient")

    /// Where TodosAPI is, for messages.
    var baseURL: String {
        let origin = http.origin
        return (origin.secure ? "https://" : "http://") + origin.hostHeader + origin.basePath
    }

    /// Runs beside the server; when the gateway shuts down, the connections to TodosAPI are closed and requests still
    /// waiting for one fail at once.
    func run() async throws {
        try? await gracefulShutdown()
        http.shutdown()
    }

    /// The caller's todos (`GET /api/todos`), each an object with `id`, `title`, `completed`, ….
    func listTodos(for caller: ToolCaller) async -> Result<[JSONValue], TodosAPIFailure> {
        await send(.GET, "/api/todos", scope: TodosAPIScope.readTodos, for: caller).flatMap { body in
            guard let todos = body?.objectValue?["todos"]?.arrayValue else { return .failure(.unexpectedBody) }
            return .success(todos)
        }
    }

    /// The caller's billing details (`GET /api/billing`): the `billing` object.
    func billing(for caller: ToolCaller) async -> Result<JSONValue, TodosAPIFailure> {
        await send(.GET, "/api/billing", scope: TodosAPIScope.readBilling, for: caller).flatMap { body in
            guard let billing = body?.objectValue?["billing"], billing.objectValue != nil else {
                return .failure(.unexpectedBody)
            }
            return .success(billing)
        }
    }

    /// Creates a todo (`POST /api/todos`); the created todo.
    func createTodo(_ fields: [String: JSONValue], for caller: ToolCaller) async -> Result<JSONValue, TodosAPIFailure> {
        await send(.POST, "/api/todos", scope: TodosAPIScope.writeTodos, body: .object(fields), for: caller).flatMap(Self.todo)
    }

    /// Changes a todo (`PATCH /api/todos/{id}`); the todo as it now is.
    func updateTodo(id: String, changes: [String: JSONValue], for caller: ToolCaller) async
        -> Result<JSONValue, TodosAPIFailure>
    {
        await send(.PATCH, "/api/todos/\(id)", scope: TodosAPIScope.writeTodos, body: .object(changes), for: caller)
            .flatMap(Self.todo)
    }

    /// Deletes a todo (`DELETE /api/todos/{id}`).
    func deleteTodo(id: String, for caller: ToolCaller) async -> Result<Void, TodosAPIFailure> {
        await send(.DELETE, "/api/todos/\(id)", scope: TodosAPIScope.writeTodos, for: caller).map { _ in () }
    }

    private static func todo(_ body: JSONValue?) -> Result<JSONValue, TodosAPIFailure> {
        guard let todo = body?.objectValue?["todo"], todo.objectValue != nil else { return .failure(.unexpectedBody) }
        return .success(todo)
    }

    /// One request as the caller: a 2xx body (nil when empty), or what went wrong.
    private func send(
        _ method: HTTPMethod, _ path: String, scope: String, body: JSONValue? = nil, for caller: ToolCaller
    ) async -> Result<JSONValue?, TodosAPIFailure> {
        // Every endpoint of TodosAPI works with the caller's own todos or billing: a machine client has none.
        guard !caller.isMachine else { return .failure(.noUser) }
        let credential: TodosAPICredential
        do { credential = try await caller.credentials.credential(scope: scope) } catch { return .failure(error) }
        var request = KeepAliveHTTPClient.Request(method: method, path: path)
        switch credential {
        case .bearer(let token): request.headers.add(name: "Authorization", value: "Bearer \(token)")
        }
        request.headers.add(name: "Accept", value: "application/json")
        if let trace = caller.trace {
            request.headers.add(name: "traceparent", value: trace.traceparent)
            if let state = trace.tracestate { request.headers.add(name: "tracestate", value: state) }
        }
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = ByteBuffer(bytes: body.serialized())
        }
        let status: Int
        let json: JSONValue?
        do {
            let response = try await http.execute(request, timeout: timeout)
            status = Int(response.status.code)
            json = response.body.readableBytes == 0 ? nil : try? JSONValue(parsing: response.body.readableBytesView)
        } catch {
            logger.error(
                "TodosAPI is unreachable",
                metadata: ["http.url": "\(baseURL)\(path)", "http.method": "\(method)", "error": "\(error)"])
            if case .timedOut = error {
                GatewayMetrics.dependencyFailure(.api, timedOut: true)
                return .failure(.timedOut)
            }
            GatewayMetrics.dependencyFailure(.api, timedOut: false)
            return .failure(.unreachable)
        }
        let message = json?.objectValue?["error_description"]?.stringValue
        switch status {
        case 200...299: return .success(json)
        case 401: return .failure(.unauthorized(message ?? "invalid token"))
        case 403: return .failure(.forbidden(message ?? "insufficient scope"))
        case 404: return .failure(.notFound)
        case 400, 413, 415, 422: return .failure(.rejected(message ?? "invalid request"))
        default:
            logger.error("TodosAPI failed", metadata: ["http.url": "\(baseURL)\(path)", "http.status": "\(status)"])
            return .failure(.failed(status: status))
        }
    }
}
