import Foundation
import Hummingbird
import JWTAuth
import NIOCore
import ServiceSupport

/// `/api/todos`: the caller's todos. Reading needs `read:todos`, changing needs `write:todos`.
struct TodosController {
    let repository: any TodoRepository

    struct SingleTodo: ResponseEncodable { let todo: Todo }

    func addRoutes(to group: RouterGroup<TodosRequestContext>) {
        group.get("todos", use: list)
        group.post("todos", use: create)
        group.get("todos/{id}", use: show)
        group.patch("todos/{id}", use: update)
        group.delete("todos/{id}", use: delete)
        group.refuseOtherMethods(on: "todos", allowed: [.get, .post])
        group.refuseOtherMethods(on: "todos/{id}", allowed: [.get, .patch, .delete])
    }

    @Sendable func list(_ request: Request, context: TodosRequestContext) async throws -> Response {
        let owner = try context.requireOwner(scope: "read:todos")
        // `?completed=true` or `false`: only the completed or the open ones.
        var completed: Bool?
        if let value = request.uri.queryParameters["completed"].map(String.init) {
            switch value {
            case "true": completed = true
            case "false": completed = false
            default: throw ErrorResponse.invalidRequest("'completed' must be true or false")
            }
        }
        var body: [UInt8] = []
        body.reserveCapacity(4096)
        body.append(contentsOf: #"{"todos":["#.utf8)
        try await repository.writeList(owner: owner, completed: completed, to: &body)
        body.append(contentsOf: "]}".utf8)
        return Response(
            status: .ok, headers: [.contentType: "application/json; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }

    @Sendable func show(_ request: Request, context: TodosRequestContext) async throws -> SingleTodo {
        let owner = try context.requireOwner(scope: "read:todos")
        guard let todo = try await repository.find(id: try todoID(context), owner: owner) else { throw Self.notFound }
        return SingleTodo(todo: todo)
    }

    @Sendable func create(_ request: Request, context: TodosRequestContext) async throws -> EditedResponse<SingleTodo> {
        let owner = try context.requireOwner(scope: "write:todos")
        let todo = try await repository.create(TodoInput.newTodo(from: try await jsonBody(request)), owner: owner)
        return EditedResponse(
            status: .created, headers: [.location: "/api/todos/\(todo.id)"], response: SingleTodo(todo: todo))
    }

    @Sendable func update(_ request: Request, context: TodosRequestContext) async throws -> SingleTodo {
        let owner = try context.requireOwner(scope: "write:todos")
        let id = try todoID(context)
        let changes = try TodoInput.changes(from: try await jsonBody(request))
        guard let todo = try await repository.update(id: id, owner: owner, changes: changes) else {
            throw Self.notFound
        }
        return SingleTodo(todo: todo)
    }

    @Sendable func delete(_ request: Request, context: TodosRequestContext) async throws -> Response {
        let owner = try context.requireOwner(scope: "write:todos")
        guard try await repository.delete(id: try todoID(context), owner: owner) else { throw Self.notFound }
        return Response(status: .noContent)
    }

    /// Another user's todo and a todo that does not exist are the same 404: ids reveal nothing.
    static let notFound = ErrorResponse.notFound("No such todo: it does not exist or belongs to someone else")

    /// The id of the path, as todos are stored: a UUID in lower case (`8F0C…` and `8f0c…` name one todo).
    private func todoID(_ context: TodosRequestContext) throws -> String {
        guard let id = context.parameters.get("id"), let uuid = UUID(uuidString: id) else { throw Self.notFound }
        return uuid.uuidString.lowercased()
    }

    private func jsonBody(_ request: Request) async throws -> [UInt8] {
        guard request.mediaTypeIs("application/json") else {
            throw ErrorResponse.unsupportedMediaType("application/json")
        }
        return Array(buffer: try await request.collectBody(limit: TodosRequestContext.bodyLimit))
    }
}
