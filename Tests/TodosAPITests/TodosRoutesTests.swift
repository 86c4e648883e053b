import Foundation
import HTTPTypes
import HummingbirdTesting
import JSON
import JWTAuth
import NIOCore
import Testing

@testable import TodosAPI

@Suite("TodosAPI /api/todos")
struct TodosRoutesTests {
    @Test func firstListingShowsSampleTodosOwnedByTheCaller() async throws {
        let app = try await TestApp()
        let alice = try app.token("alice")
        let bob = try app.token("bob")
        try await app.run { client in
            let aliceTodos = try await client.execute(uri: "/api/todos", method: .get, headers: bearer(alice)) {
                #expect($0.status == .ok)
                return try body($0)["todos"]?.arrayValue ?? []
            }
            #expect(aliceTodos.count == 3)
            #expect(aliceTodos.allSatisfy { $0.objectValue?["owner"] == "auth0|alice" })
            let fields = Set(aliceTodos.first?.objectValue?.keys.map { $0 } ?? [])
            #expect(fields == ["id", "title", "description", "due", "completed", "owner"])
            let bobTodos = try await client.execute(uri: "/api/todos", method: .get, headers: bearer(bob)) {
                try body($0)["todos"]?.arrayValue ?? []
            }
            #expect(bobTodos.count == 3)
            let bobIDs = Set(bobTodos.compactMap { $0.objectValue?["id"] })
            #expect(bobIDs.isDisjoint(with: aliceTodos.compactMap { $0.objectValue?["id"] }))
            // Listing again does not seed again.
            try await client.execute(uri: "/api/todos", method: .get, headers: bearer(alice)) {
                let actual1 = try body($0)["todos"]?.arrayValue?.count
                #expect(actual1 == 3)
            }
        }
    }

    @Test func createShowUpdateDelete() async throws {
        let app = try await TestApp()
        let alice = try app.token("alice")
        try await app.run { client in
            let created = try await client.execute(
                uri: "/api/todos", method: .post, headers: .bearerJSON(alice),
                body: json(#"{"title":"  Ship the gateway  ","description":"v1","due":"2026-12-31"}"#)
            ) { response in
                #expect(response.status == .created)
                let todo = try body(response)["todo"]?.objectValue ?? [:]
                #expect(todo["title"] == "Ship the gateway")
                #expect(todo["completed"] == false)
                #expect(todo["due"] == "2026-12-31")
                #expect(todo["owner"] == "auth0|alice")
                #expect(response.headers[.location] == "/api/todos/\(todo["id"]?.stringValue ?? "")")
                return todo
            }
            let id = try #require(created["id"]?.stringValue)

            try await client.execute(uri: "/api/todos/\(id)", method: .get, headers: bearer(alice)) { response in
                let actual2 = try body(response)["todo"]?.objectValue
                #expect(actual2 == created)
            }
            try await client.execute(
                uri: "/api/todos/\(id)", method: .patch, headers: .bearerJSON(alice),
                body: json(#"{"completed":true,"due":null}"#)
            ) { response in
                #expect(response.status == .ok)
                let todo = try body(response)["todo"]?.objectValue ?? [:]
                #expect(todo["completed"] == true)
                #expect(todo["due"] == .null)
                #expect(todo["title"] == "Ship the gateway")
            }
            try await client.execute(uri: "/api/todos", method: .get, headers: bearer(alice)) { response in
                let todos = try body(response)["todos"]?.arrayValue ?? []
                #expect(todos.count == 4)
                #expect(todos.last?.objectValue?["id"] == .string(id))
            }
            // The same id in capitals names the same todo.
            try await client.execute(uri: "/api/todos/\(id.uppercased())", method: .get, headers: bearer(alice)) {
                let todo = try body($0)["todo"]?.objectValue
                #expect(todo?["id"] == .string(id))
            }
            // ?completed= filters; anything but true or false is refused.
            try await client.execute(uri: "/api/todos?completed=true", method: .get, headers: bearer(alice)) {
                let todos = try body($0)["todos"]?.arrayValue ?? []
                #expect(todos.count == 2 && todos.allSatisfy { $0.objectValue?["completed"] == true })
                #expect(todos.contains { $0.objectValue?["id"] == .string(id) })
            }
            try await client.execute(uri: "/api/todos?completed=false", method: .get, headers: bearer(alice)) {
                let todos = try body($0)["todos"]?.arrayValue ?? []
                #expect(todos.count == 2 && todos.allSatisfy { $0.objectValue?["completed"] == false })
            }
            try await client.execute(uri: "/api/todos?completed=yes", method: .get, headers: bearer(alice)) {
                try expectError($0, status: .badRequest, code: "invalid_request")
            }
            try await client.execute(uri: "/api/todos/\(id)", method: .delete, headers: bearer(alice)) { response in
                #expect(response.status == .noContent)
            }
            try await client.execute(uri: "/api/todos/\(id)", method: .delete, headers: bearer(alice)) { response in
                try expectError(response, status: .notFound, code: "not_found")
            }
        }
    }

    @Test func anotherUsersTodoIsA404AndStaysUntouched() async throws {
        let app = try await TestApp()
        let alice = try app.token("alice")
        let mallory = try app.token("mallory", scope: "read:todos write:todos")
        try await app.run { client in
            let id = try await client.execute(
                uri: "/api/todos", method: .post, headers: .bearerJSON(alice), body: json(#"{"title":"private"}"#)
            ) { try body($0)["todo"]?.objectValue?["id"]?.stringValue ?? "" }

            try await client.execute(uri: "/api/todos/\(id)", method: .get, headers: bearer(mallory)) {
                try expectError($0, status: .notFound, code: "not_found")
            }
            try await client.execute(
                uri: "/api/todos/\(id)", method: .patch, headers: .bearerJSON(mallory),
                body: json(#"{"title":"pwned"}"#)
            ) { try expectError($0, status: .notFound, code: "not_found") }
            try await client.execute(uri: "/api/todos/\(id)", method: .delete, headers: bearer(mallory)) {
                try expectError($0, status: .notFound, code: "not_found")
            }
            try await client.execute(uri: "/api/todos", method: .get, headers: bearer(mallory)) { response in
                let ids = try body(response)["todos"]?.arrayValue?.compactMap { $0.objectValue?["id"]?.stringValue }
                #expect(ids?.contains(id) == false)
            }
            try await client.execute(uri: "/api/todos/\(id)", method: .get, headers: bearer(alice)) { response in
                let actual3 = try body(response)["todo"]?.objectValue?["title"]
                #expect(actual3 == "private")
            }
        }
    }

    @Test(arguments: ["not-a-uuid", "00000000-0000-0000-0000-000000000000", "%27%20OR%201%3D1"])
    func unknownIdsAre404(id: String) async throws {
        let app = try await TestApp()
        let alice = try app.token()
        try await app.run { client in
            try await client.execute(uri: "/api/todos/\(id)", method: .get, headers: bearer(alice)) {
                try expectError($0, status: .notFound, code: "not_found")
            }
        }
    }

    @Test func writingNeedsWriteTodos() async throws {
        let app = try await TestApp()
        let bob = try app.token("bob")
        try await app.run { client in
            try await client.execute(
                uri: "/api/todos", method: .post, headers: .bearerJSON(bob), body: json(#"{"title":"x"}"#)
            ) {
                try expectError(
                    $0, status: .forbidden, code: "insufficient_scope",
                    challenge:
                        #"Bearer realm="todos-api", error="insufficient_scope", error_description="The access token lacks the scope write:todos", scope="write:todos""#
                )
            }
            let id = try await client.execute(uri: "/api/todos", method: .get, headers: bearer(bob)) {
                try body($0)["todos"]?.arrayValue?.first?.objectValue?["id"]?.stringValue ?? ""
            }
            try await client.execute(uri: "/api/todos/\(id)", method: .delete, headers: bearer(bob)) {
                try expectError($0, status: .forbidden, code: "insufficient_scope")
            }
        }
    }

    @Test(arguments: [
        (#"{}"#, "'title' is required"),
        (#"{"title":""}"#, "'title' must not be empty"),
        (#"{"title":"   "}"#, "'title' must not be empty"),
        (#"{"title":42}"#, "'title' must be a string"),
        (#"{"title":"a\nb"}"#, "'title' must be a single line without control characters"),
        (
            #"{"title":"ok","owner":"auth0|bob"}"#,
            "Unknown field 'owner': a todo has title, description, due, completed"
        ),
        (#"{"title":"ok","due":"2026-02-30"}"#, "'due' must be a date like 2026-12-31, or null"),
        (#"{"title":"ok","due":"tomorrow"}"#, "'due' must be a date like 2026-12-31, or null"),
        (#"{"title":"ok","completed":"yes"}"#, "'completed' must be true or false"),
        (#"{"title":"ok","description":7}"#, "'description' must be a string or null"),
        (#"["title"]"#, "The body must be a JSON object"),
        (#"{"title": "#, "The body is not valid JSON"),
        ("", "The body is not valid JSON"),
    ])
    func createValidatesTheBody(body text: String, message: String) async throws {
        let app = try await TestApp()
        let alice = try app.token()
        try await app.run { client in
            try await client.execute(uri: "/api/todos", method: .post, headers: .bearerJSON(alice), body: json(text)) {
                try expectError($0, status: .badRequest, code: "invalid_request")
                let actual4 = try body($0)["error_description"]
                #expect(actual4 == .string(message))
            }
        }
    }

    @Test func createRefusesLongFieldsOtherMediaTypesAndLargeBodies() async throws {
        let app = try await TestApp()
        let alice = try app.token()
        let longTitle = String(repeating: "t", count: 201)
        try await app.run { client in
            try await client.execute(
                uri: "/api/todos", method: .post, headers: .bearerJSON(alice),
                body: json(#"{"title":"\#(longTitle)"}"#)
            ) {
                try expectError($0, status: .badRequest, code: "invalid_request")
            }
            try await client.execute(
                uri: "/api/todos", method: .post,
                headers: [.authorization: "Bearer \(alice)", .contentType: "text/plain"],
                body: json(#"{"title":"x"}"#)
            ) {
                try expectError($0, status: .unsupportedMediaType, code: "unsupported_media_type")
            }
            let huge = String(repeating: "d", count: 20_000)
            try await client.execute(
                uri: "/api/todos", method: .post, headers: .bearerJSON(alice),
                body: json(#"{"title":"x","description":"\#(huge)"}"#)
            ) {
                try expectError($0, status: .contentTooLarge, code: "request_too_large")
            }
            try await client.execute(uri: "/api/todos", method: .get, headers: bearer(alice)) {
                let actual5 = try body($0)["todos"]?.arrayValue?.count
                #expect(actual5 == 3)
            }
        }
    }

    @Test func patchValidatesTheBody() async throws {
        let app = try await TestApp()
        let alice = try app.token()
        try await app.run { client in
            let id = try await client.execute(uri: "/api/todos", method: .get, headers: bearer(alice)) {
                try body($0)["todos"]?.arrayValue?.first?.objectValue?["id"]?.stringValue ?? ""
            }
            for (text, message) in [
                (#"{}"#, "The body changes nothing: send one or more of title, description, due, completed"),
                (#"{"id":"other"}"#, "Unknown field 'id': a todo has title, description, due, completed"),
                (#"{"completed":null}"#, "'completed' must be true or false"),
            ] {
                try await client.execute(
                    uri: "/api/todos/\(id)", method: .patch, headers: .bearerJSON(alice), body: json(text)
                ) {
                    try expectError($0, status: .badRequest, code: "invalid_request")
                    let actual6 = try body($0)["error_description"]
                    #expect(actual6 == .string(message))
                }
            }
        }
    }
}

@Suite("Todo JSON")
struct TodoJSONTests {
    @Test(arguments: [
        Todo(
            id: "a", title: "Quote \" backslash \\ tab \t", description: "line\nbreak, é, 😀", due: nil, completed: true,
            owner: "auth0|x"),
        Todo(id: "b", title: "", description: "\u{01}", due: "2027-01-01", completed: false, owner: "o"),
    ])
    func theListWriterMatchesTheJSONValue(todo: Todo) throws {
        var written: [UInt8] = []
        todo.write(to: &written)
        #expect(written == todo.json.serialized())
        #expect(try JSONValue(parsing: written) == todo.json)
    }
}
