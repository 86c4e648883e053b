import Foundation
import JWTAuth
import NIOHTTP1

/// The outcome of a tool call, as MCP's `CallToolResult`: text (the JSON of the structured content, for clients that
/// only read text), the structured content itself, or an error message the model can read.
struct ToolResult: Sendable, Equatable {
    let text: String
    let structured: JSONValue?
    let isError: Bool

    /// The `CallToolResult` JSON object.
    var json: JSONValue {
        var result: [String: JSONValue] = [
            "content": [["type": "text", "text": .string(text)]], "isError": .bool(isError),
        ]
        if let structured { result["structuredContent"] = structured }
        return .object(result)
    }
}

/// A tool call the protocol refuses (unknown tool, bad arguments): a JSON-RPC `invalid params` error (-32602), not a
/// tool result.
struct ToolError: Error, Equatable {
    let message: String
    static let code = -32602
    init(_ message: String) { self.message = message }
}

/// Runs the tools. Each call reaches TodosAPI with the user's upstream access token; failures the user can act on
/// (sign in again, the API is down, no such todo) are tool results with `isError`, never protocol errors or 500s.
struct TodoTools: Sendable {
    /// Renews upstream tokens in gateway mode; `nil` in the modes where the caller brings its own credential.
    let tokens: UpstreamTokenService?
    let api: TodosAPIClient

    func call(_ name: String, arguments: [String: JSONValue], caller: MCPCaller) async throws -> ToolResult {
        guard ToolCatalog.all.contains(name) else { throw ToolError("Unknown tool: \(name)") }
        if let scope = ToolCatalog.requiredScope(name), !caller.scope.contains(scope) {
            return Self.failure("This connection was not granted the \(scope) scope that \(name) needs.")
        }
        switch name {
        case ToolCatalog.whoami:
            try Self.expectArguments(arguments, allowed: [])
            return whoami(caller)
        case ToolCatalog.listTodos:
            try Self.expectArguments(arguments, allowed: ["completed"])
            let completed = try Self.bool(arguments, "completed")
            return await callAPI(caller, .GET, "/api/todos") { body in
                guard var todos = body.objectValue?["todos"]?.arrayValue else { return nil }
                if let completed { todos = todos.filter { $0.objectValue?["completed"]?.boolValue == completed } }
                return ["todos": .array(todos)]
            }
        case ToolCatalog.listBilling:
            try Self.expectArguments(arguments, allowed: [])
            return await callAPI(caller, .GET, "/api/billing") { $0.objectValue?["billing"] == nil ? nil : $0 }
        case ToolCatalog.addTodo:
            try Self.expectArguments(arguments, allowed: ["title", "description", "due"])
            guard try Self.string(arguments, "title") != nil else {
                throw ToolError("'title' is required")
            }
            _ = try Self.string(arguments, "description")
            _ = try Self.string(arguments, "due")
            return await callAPI(caller, .POST, "/api/todos", body: .object(arguments)) {
                Self.todo($0)
            }
        case ToolCatalog.updateTodo:
            try Self.expectArguments(arguments, allowed: ["id", "title", "description", "due", "completed"])
            let id = try Self.todoID(arguments)
            var changes = arguments
            changes.removeValue(forKey: "id")
            guard !changes.isEmpty else {
                throw ToolError("Nothing to change: pass title, description, due or completed")
            }
            return await callAPI(caller, .PATCH, "/api/todos/\(id)", body: .object(changes)) {
                Self.todo($0)
            }
        default:  // delete-todo
            try Self.expectArguments(arguments, allowed: ["id"])
            let id = try Self.todoID(arguments)
            return await callAPI(caller, .DELETE, "/api/todos/\(id)") { _ in ["deleted": true, "id": .string(id)] }
        }
    }

    private func whoami(_ caller: MCPCaller) -> ToolResult {
        let identity = caller.identity
        return Self.success([
            "sub": .string(identity.subject), "name": identity.name.map(JSONValue.string) ?? .null,
            "email": identity.email.map(JSONValue.string) ?? .null,
            "client_id": identity.clientID.map(JSONValue.string) ?? .null,
            "scopes": .array(caller.scope.sorted.map(JSONValue.string)),
        ])
    }

    /// Calls TodosAPI as the user and turns the answer into a tool result; `extract` picks the structured content
    /// out of a 2xx body (`nil` when the body is not what the API promises).
    private func callAPI(
        _ caller: MCPCaller, _ method: HTTPMethod, _ path: String, body: JSONValue? = nil,
        extract: (JSONValue) -> JSONValue?
    ) async -> ToolResult {
        let credential: TodosAPIClient.Credential
        switch caller.credential {
        case .bearer(let token): credential = .bearer(token)
        case .accessAssertion(let assertion): credential = .accessToken(assertion)
        case .grant(let grant):
            guard let tokens else { return Self.failure("This gateway cannot renew sessions.") }
            do {
                credential = .bearer(try await tokens.accessToken(grantID: grant.id, known: grant))
            } catch {
                switch error {
                case .signInRequired:
                    return Self.failure("Your sign-in has expired or was revoked. Reconnect to sign in again.")
                case .providerUnavailable(let reason):
                    return Self.failure(
                        "The identity provider is unavailable, so your session could not be renewed: \(reason)")
                }
            }
        }
        let reply: TodosAPIClient.Reply
        do { reply = try await api.send(method, path, credential: credential, body: body) } catch {
            return Self.failure("\(error)")
        }
        switch reply.status {
        case 200...299:
            guard let structured = extract(reply.body ?? .object([:])) else {
                return Self.failure("The Todos API answered with an unexpected body.")
            }
            return Self.success(structured)
        case 401:
            return Self.failure(
                "The Todos API refused your sign-in: \(reply.message ?? "invalid token"). Reconnect to sign in again.")
        case 403:
            return Self.failure(
                "The Todos API says your account may not do this: \(reply.message ?? "insufficient scope").")
        case 404:
            return Self.failure("No such todo: it does not exist or belongs to someone else.")
        case 400, 413, 415:
            return Self.failure("The Todos API refused the request: \(reply.message ?? "invalid request").")
        default:
            return Self.failure("The Todos API failed (HTTP \(reply.status)). Try again later.")
        }
    }

    static func success(_ structured: JSONValue) -> ToolResult {
        ToolResult(
            text: String(decoding: structured.serialized(), as: UTF8.self), structured: structured, isError: false)
    }

    static func failure(_ message: String) -> ToolResult {
        ToolResult(text: message, structured: nil, isError: true)
    }

    private static func todo(_ body: JSONValue) -> JSONValue? {
        body.objectValue?["todo"] == nil ? nil : body
    }

    private static func expectArguments(_ arguments: [String: JSONValue], allowed: Set<String>) throws {
        if let unknown = arguments.keys.sorted().first(where: { !allowed.contains($0) }) {
            throw ToolError("Unknown argument '\(unknown)'")
        }
    }

    private static func string(_ arguments: [String: JSONValue], _ name: String) throws -> String? {
        guard let value = arguments[name], value != .null else { return nil }
        guard let text = value.stringValue else { throw ToolError("'\(name)' must be a string") }
        return text
    }

    private static func bool(_ arguments: [String: JSONValue], _ name: String) throws -> Bool? {
        guard let value = arguments[name], value != .null else { return nil }
        guard let flag = value.boolValue else { throw ToolError("'\(name)' must be true or false") }
        return flag
    }

    /// The todo id, which must be a UUID: it becomes part of the API path.
    private static func todoID(_ arguments: [String: JSONValue]) throws -> String {
        guard let id = try string(arguments, "id"), let uuid = UUID(uuidString: id) else {
            throw ToolError("'id' must be a todo id (a UUID) from list-todos")
        }
        return uuid.uuidString.lowercased()
    }
}
