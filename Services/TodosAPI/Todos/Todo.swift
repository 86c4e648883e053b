import Foundation
import JWTAuth

/// A todo as the API shows it.
struct Todo: Codable, Sendable, Equatable {
    var id: String
    var title: String
    var description: String
    /// A calendar date, `YYYY-MM-DD`, or `nil`.
    var due: String?
    var completed: Bool
    /// The `sub` of the user the todo belongs to.
    var owner: String

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id, forKey: .id)
        try container.encode(title, forKey: .title)
        try container.encode(description, forKey: .description)
        try container.encode(due, forKey: .due)  // `null` rather than absent, so clients see every field
        try container.encode(completed, forKey: .completed)
        try container.encode(owner, forKey: .owner)
    }

    /// The todo as JSON, for responses written without `JSONEncoder` (list responses are the API's hot path).
    var json: JSONValue {
        [
            "id": .string(id), "title": .string(title), "description": .string(description),
            "due": due.map(JSONValue.string) ?? .null, "completed": .bool(completed), "owner": .string(owner),
        ]
    }
}

/// The fields of a todo to create.
struct NewTodo: Sendable, Equatable {
    var title: String
    var description: String = ""
    var due: String?
    var completed = false
}

/// The fields of a todo to change; `nil` leaves a field as it is, `.some(nil)` clears `due`.
struct TodoChanges: Sendable, Equatable {
    var title: String?
    var description: String?
    var due: String??
    var completed: Bool?
}
