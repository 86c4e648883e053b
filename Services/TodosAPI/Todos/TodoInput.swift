import Foundation
import JSON
import JWTAuth
import ServiceSupport

/// Validates the JSON bodies of `POST /api/todos` and `PATCH /api/todos/{id}`, with messages that say exactly what
/// to fix. Unknown fields are refused, so that a typo (`"complete": true`) is not silently ignored and `owner` or `id`
/// cannot be set by a client.
enum TodoInput {
    static let fields = ["title", "description", "due", "completed"]
    static let titleLimit = 200
    static let descriptionLimit = 2000

    static func newTodo(from body: [UInt8]) throws(ErrorResponse) -> NewTodo {
        let object = try jsonObject(body)
        guard let titleValue = object["title"] else { throw .badRequest("'title' is required") }
        var todo = NewTodo(title: try title(titleValue))
        if let value = object["description"] { todo.description = try description(value) }
        if let value = object["due"] { todo.due = try due(value) }
        if let value = object["completed"] { todo.completed = try completed(value) }
        return todo
    }

    static func changes(from body: [UInt8]) throws(ErrorResponse) -> TodoChanges {
        let object = try jsonObject(body)
        guard !object.isEmpty else {
            throw .badRequest("The body changes nothing: send one or more of \(fields.joined(separator: ", "))")
        }
        var changes = TodoChanges()
        if let value = object["title"] { changes.title = try title(value) }
        if let value = object["description"] { changes.description = try description(value) }
        if let value = object["due"] { changes.due = .some(try due(value)) }
        if let value = object["completed"] { changes.completed = try completed(value) }
        return changes
    }

    private static func jsonObject(_ body: [UInt8]) throws(ErrorResponse) -> [String: JSONValue] {
        guard let value = try? JSONValue(parsing: body) else {
            throw .badRequest("The body is not valid JSON")
        }
        guard case .object(let object) = value else { throw .badRequest("The body must be a JSON object") }
        if let unknown = object.keys.sorted().first(where: { !fields.contains($0) }) {
            throw .badRequest("Unknown field '\(unknown)': a todo has \(fields.joined(separator: ", "))")
        }
        return object
    }

    private static func title(_ value: JSONValue) throws(ErrorResponse) -> String {
        guard let text = value.stringValue else { throw .badRequest("'title' must be a string") }
        let title = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !title.isEmpty else { throw .badRequest("'title' must not be empty") }
        guard title.count <= titleLimit else { throw .badRequest("'title' must be at most \(titleLimit) characters") }
        guard !title.unicodeScalars.contains(where: { CharacterSet.controlCharacters.contains($0) }) else {
            throw .badRequest("'title' must be a single line without control characters")
        }
        return title
    }

    private static func description(_ value: JSONValue) throws(ErrorResponse) -> String {
        if value == .null { return "" }
        guard let text = value.stringValue else { throw .badRequest("'description' must be a string or null") }
        guard text.count <= descriptionLimit else {
            throw .badRequest("'description' must be at most \(descriptionLimit) characters")
        }
        return text
    }

    private static func due(_ value: JSONValue) throws(ErrorResponse) -> String? {
        if value == .null { return nil }
        guard let text = value.stringValue, CalendarDate.isValid(text) else {
            throw .badRequest("'due' must be a date like 2026-12-31, or null")
        }
        return text
    }

    private static func completed(_ value: JSONValue) throws(ErrorResponse) -> Bool {
        guard let flag = value.boolValue else { throw .badRequest("'completed' must be true or false") }
        return flag
    }
}

/// `YYYY-MM-DD` calendar dates (RFC 3339 `full-date`).
enum CalendarDate {
    static func isValid(_ text: String) -> Bool {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard text.count == 10, parts.count == 3, parts[0].count == 4, parts[1].count == 2, parts[2].count == 2,
            let year = Int(parts[0]), let month = Int(parts[1]), let day = Int(parts[2]),
            text.allSatisfy({ $0.isASCII })
        else { return false }
        var components = DateComponents(year: year, month: month, day: day)
        components.calendar = utcCalendar
        return (1...12).contains(month) && day >= 1 && components.isValidDate
    }

    static func string(from date: Date) -> String {
        let components = utcCalendar.dateComponents([.year, .month, .day], from: date)
        return String(format: "%04d-%02d-%02d", components.year ?? 0, components.month ?? 0, components.day ?? 0)
    }

    private static let utcCalendar: Calendar = {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC") ?? .current
        return calendar
    }()
}
