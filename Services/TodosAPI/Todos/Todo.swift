import Foundation
import JSON
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

    /// Appends the todo's JSON, members in the order `JSONValue` writes them (sorted), without building a dictionary:
    /// list responses are the API's hot path.
    func write(to output: inout [UInt8]) {
        Self.writeJSON(completed: completed, to: &output) { field, output in
            switch field {
            case .description: JSONValue.writeString(description, to: &output)
            case .due:
                if let due { JSONValue.writeString(due, to: &output) } else { output.append(contentsOf: "null".utf8) }
            case .id: JSONValue.writeString(id, to: &output)
            case .owner: JSONValue.writeString(owner, to: &output)
            case .title: JSONValue.writeString(title, to: &output)
            }
        }
    }

    /// The text members of a todo's JSON.
    enum TextField { case description, due, id, owner, title }

    /// A todo's JSON object, members sorted: the one place its layout is written. `value` writes each text member's
    /// value (a JSON string, or `null` for a todo without a due date): from a ``Todo``'s strings, or straight from the
    /// bytes of a database row (``SQLiteTodoRepository``'s list).
    static func writeJSON(
        completed: Bool, to output: inout [UInt8], value: (TextField, inout [UInt8]) throws -> Void
    ) rethrows {
        output.append(contentsOf: #"{"completed":"#.utf8)
        output.append(contentsOf: (completed ? "true" : "false").utf8)
        output.append(contentsOf: #","description":"#.utf8)
        try value(.description, &output)
        output.append(contentsOf: #","due":"#.utf8)
        try value(.due, &output)
        output.append(contentsOf: #","id":"#.utf8)
        try value(.id, &output)
        output.append(contentsOf: #","owner":"#.utf8)
        try value(.owner, &output)
        output.append(contentsOf: #","title":"#.utf8)
        try value(.title, &output)
        output.append(UInt8(ascii: "}"))
    }

    /// The todo as JSON.
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
