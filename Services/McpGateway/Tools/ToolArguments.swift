import Foundation
import JSON
import JWTAuth

/// The `arguments` of a `tools/call`, with the checks every tool makes: no unknown argument, and each one of the type
/// the tool's input schema says.
struct ToolArguments: Sendable {
    let values: [String: JSONValue]

    init(_ values: [String: JSONValue] = [:]) { self.values = values }

    /// Refuses any argument not in `allowed` (the schemas say `additionalProperties: false`).
    func expectOnly(_ allowed: Set<String>) throws(ToolError) {
        if let unknown = values.keys.sorted().first(where: { !allowed.contains($0) }) {
            throw ToolError("Unknown argument '\(unknown)'")
        }
    }

    /// A string argument; `nil` when absent or `null`.
    func string(_ name: String) throws(ToolError) -> String? {
        guard let value = values[name], value != .null else { return nil }
        guard let text = value.stringValue else { throw ToolError("'\(name)' must be a string") }
        return text
    }

    /// A boolean argument; `nil` when absent or `null`.
    func bool(_ name: String) throws(ToolError) -> Bool? {
        guard let value = values[name], value != .null else { return nil }
        guard let flag = value.boolValue else { throw ToolError("'\(name)' must be true or false") }
        return flag
    }

    /// The `id` of a todo, which must be a UUID: it becomes part of the API's path. Lower-cased, as the API writes it.
    func todoID() throws(ToolError) -> String {
        guard let id = try string("id"), let uuid = UUID(uuidString: id) else {
            throw ToolError("'id' must be a todo id (a UUID) from list-todos")
        }
        return uuid.uuidString.lowercased()
    }
}
