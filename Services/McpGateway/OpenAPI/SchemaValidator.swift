import Foundation
import JSON

extension JSONValue {
    /// The JSON Schema type name of the value, for messages: `string`, `integer`, `number`, `boolean`, `array`,
    /// `object`, `null`.
    var kindName: String {
        switch self {
        case .string: "string"
        case .integer: "integer"
        case .double: "number"
        case .bool: "boolean"
        case .array: "array"
        case .object: "object"
        case .null: "null"
        }
    }
}

/// Checks a value against a tool's JSON Schema before anything is sent, so that a wrong argument is a tool error naming
/// the field (`'todos[2].title' must be a string`), not a request the API refuses or, worse, takes.
///
/// It asserts the keywords that decide what a value is: `type`, `enum`, `const`, `properties`, `required`,
/// `additionalProperties`, `items`, `prefixItems`, lengths, sizes and bounds, `allOf`/`anyOf`/`oneOf`/`not`, local
/// `$ref`s into `$defs`, and the formats `uuid`, `date` and `date-time`. It leaves `pattern` to the API: a regular
/// expression run on hostile text by a backtracking engine is a denial of service waiting for its input.
struct SchemaValidator {
    /// The schema holding `$defs`.
    let root: JSONValue

    init(root: JSONValue) { self.root = root }
    /// How deep a value may nest; a caller's arguments deeper than this are refused.
    static let maximumDepth = 64

    /// How many schema checks one value may cost: `anyOf`/`oneOf` try every branch, so a schema that refers to
    /// itself through them could otherwise make one argument cost billions.
    static let maximumSteps = 100_000

    struct Failure: Error, Equatable {
        let path: String
        let problem: String
        /// The message a tool error carries.
        var message: String { path.isEmpty ? "The arguments \(problem)" : "'\(path)' \(problem)" }
    }

    /// Whether failures name the place (`todos[2].title`). A value is checked first without building those names,
    /// which cost an allocation per member; only a value that fails is checked again to say where.
    private var describing = false

    func validate(_ value: JSONValue) throws(Failure) {
        var steps = 0
        do { try check(value, against: root, path: "", depth: 0, steps: &steps) } catch {
            var described = self
            described.describing = true
            steps = 0
            try described.check(value, against: root, path: "", depth: 0, steps: &steps)
            throw error
        }
    }

    /// The place of a member or an item, when failures are described.
    private func place(_ path: String, _ name: String) -> String { describing ? Self.join(path, name) : "" }
    private func place(_ path: String, _ index: Int) -> String { describing ? "\(path)[\(index)]" : "" }

    private func check(_ value: JSONValue, against schema: JSONValue, path: String, depth: Int, steps: inout Int)
        throws(Failure)
    {
        guard depth <= Self.maximumDepth else { throw Failure(path: path, problem: "is nested too deeply") }
        steps += 1
        guard steps <= Self.maximumSteps else { throw Failure(path: path, problem: "is too complex to check") }
        let members: [String: JSONValue]
        switch schema {
        case .bool(false): throw Failure(path: path, problem: "is not allowed")
        case .object(let object): members = object
        default: return
        }
        if case .string(let reference)? = members["$ref"] {
            guard reference.hasPrefix("#/$defs/"), let definition = root.objectValue?["$defs"]?.objectValue?[
                String(reference.dropFirst("#/$defs/".count))]
            else { throw Failure(path: path, problem: "cannot be checked: its schema refers to \(reference)") }
            try check(value, against: definition, path: path, depth: depth + 1, steps: &steps)
        }
        if let type = members["type"] { try checkType(value, type, path: path) }
        if case .array(let allowed)? = members["enum"], !allowed.contains(where: { Self.equal($0, value) }) {
            let listed = allowed.prefix(10).map { String(decoding: $0.serialized(), as: UTF8.self) }
            throw Failure(path: path, problem: "must be one of \(listed.joined(separator: ", "))")
        }
        if let constant = members["const"], !Self.equal(constant, value) {
            throw Failure(path: path, problem: "must be \(String(decoding: constant.serialized(), as: UTF8.self))")
        }
        switch value {
        case .string(let text): try checkString(text, members, path: path)
        case .integer, .double: try checkNumber(value.doubleValue ?? 0, members, path: path)
        case .array(let elements): try checkArray(elements, members, path: path, depth: depth, steps: &steps)
        case .object(let object): try checkObject(object, members, path: path, depth: depth, steps: &steps)
        default: break
        }
        if case .array(let all)? = members["allOf"] {
            for part in all { try check(value, against: part, path: path, depth: depth + 1, steps: &steps) }
        }
        if case .array(let any)? = members["anyOf"] {
            var first: Failure?
            var matched = false
            for part in any {
                do {
                    try check(value, against: part, path: path, depth: depth + 1, steps: &steps)
                    matched = true
                    break
                } catch {
                    if steps > Self.maximumSteps { throw error }
                    first = first ?? error
                }
            }
            if !matched, let first { throw first }
        }
        if case .array(let one)? = members["oneOf"] {
            var matches = 0
            var first: Failure?
            for part in one {
                do {
                    try check(value, against: part, path: path, depth: depth + 1, steps: &steps)
                    matches += 1
                } catch {
                    if steps > Self.maximumSteps { throw error }
                    first = first ?? error
                }
            }
            if matches == 0, let first { throw first }
            if matches > 1 { throw Failure(path: path, problem: "matches more than one of the schemas it may match") }
        }
        if let not = members["not"] {
            let matched = (try? check(value, against: not, path: path, depth: depth + 1, steps: &steps)) != nil
            if steps > Self.maximumSteps { throw Failure(path: path, problem: "is too complex to check") }
            if matched { throw Failure(path: path, problem: "is a value it must not be") }
        }
    }

    private func checkType(_ value: JSONValue, _ type: JSONValue, path: String) throws(Failure) {
        let names: [String] = type.stringValue.map { [$0] } ?? type.stringArrayValue ?? []
        guard !names.isEmpty else { return }
        let matches = names.contains { name in
            switch (name, value) {
            case ("string", .string), ("boolean", .bool), ("array", .array), ("object", .object), ("null", .null):
                true
            case ("integer", .integer), ("number", .integer), ("number", .double): true
            case ("integer", .double(let number)): number.rounded() == number && abs(number) < 9.0e15
            default: false
            }
        }
        guard !matches else { return }
        let wanted =
            names.count == 1
            ? Self.article(names[0]) : names.dropLast().map(Self.article).joined(separator: ", ") + " or "
                + Self.article(names.last!)
        throw Failure(path: path, problem: "must be \(wanted), not \(Self.article(value.kindName))")
    }

    private static func article(_ type: String) -> String {
        switch type {
        case "null": "null"
        case "boolean": "true or false"
        case "integer", "object", "array": "an \(type)"
        default: "a \(type)"
        }
    }

    private func checkString(_ text: String, _ schema: [String: JSONValue], path: String) throws(Failure) {
        let length = text.unicodeScalars.count
        if let minimum = schema["minLength"]?.doubleValue, Double(length) < minimum {
            throw Failure(
                path: path, problem: minimum == 1 ? "must not be empty" : "must be at least \(Self.number(minimum)) characters")
        }
        if let maximum = schema["maxLength"]?.doubleValue, Double(length) > maximum {
            throw Failure(path: path, problem: "must be at most \(Self.number(maximum)) characters")
        }
        switch schema["format"]?.stringValue {
        case "uuid"?:
            guard text.utf8.count == 36, UUID(uuidString: text) != nil else {
                throw Failure(path: path, problem: "must be a UUID")
            }
        case "date"?:
            guard Self.isDate(text) else { throw Failure(path: path, problem: "must be a date, YYYY-MM-DD") }
        case "date-time"?:
            guard Self.isDateTime(text) else {
                throw Failure(path: path, problem: "must be a date and time (RFC 3339), e.g. 2026-12-07T10:00:00Z")
            }
        default: break
        }
    }

    private func checkNumber(_ number: Double, _ schema: [String: JSONValue], path: String) throws(Failure) {
        func text(_ bound: Double) -> String { Self.number(bound) }
        if let minimum = schema["minimum"]?.doubleValue, number < minimum {
            throw Failure(path: path, problem: "must be at least \(text(minimum))")
        }
        if let maximum = schema["maximum"]?.doubleValue, number > maximum {
            throw Failure(path: path, problem: "must be at most \(text(maximum))")
        }
        if let minimum = schema["exclusiveMinimum"]?.doubleValue, number <= minimum {
            throw Failure(path: path, problem: "must be more than \(text(minimum))")
        }
        if let maximum = schema["exclusiveMaximum"]?.doubleValue, number >= maximum {
            throw Failure(path: path, problem: "must be less than \(text(maximum))")
        }
    }

    private func checkArray(
        _ elements: [JSONValue], _ schema: [String: JSONValue], path: String, depth: Int, steps: inout Int
    ) throws(Failure)
    {
        if let minimum = schema["minItems"]?.doubleValue, Double(elements.count) < minimum {
            throw Failure(path: path, problem: "must have at least \(Self.number(minimum)) items")
        }
        if let maximum = schema["maxItems"]?.doubleValue, Double(elements.count) > maximum {
            throw Failure(path: path, problem: "must have at most \(Self.number(maximum)) items")
        }
        var prefix = 0
        if case .array(let positional)? = schema["prefixItems"] {
            prefix = positional.count
            for (index, element) in elements.prefix(prefix).enumerated() {
                try check(element, against: positional[index], path: place(path, index), depth: depth + 1, steps: &steps)
            }
        }
        if let items = schema["items"] {
            for (index, element) in elements.enumerated().dropFirst(prefix) {
                try check(element, against: items, path: place(path, index), depth: depth + 1, steps: &steps)
            }
        }
        if schema["uniqueItems"] == .bool(true), elements.count > 1, Set(elements).count < elements.count {
            throw Failure(path: path, problem: "must not repeat an item")
        }
    }

    private func checkObject(
        _ object: [String: JSONValue], _ schema: [String: JSONValue], path: String, depth: Int, steps: inout Int
    ) throws(Failure)
    {
        let properties = schema["properties"]?.objectValue ?? [:]
        for name in (schema["required"]?.stringArrayValue ?? []) where object[name] == nil {
            throw Failure(path: Self.join(path, name), problem: "is required")
        }
        if let minimum = schema["minProperties"]?.doubleValue, Double(object.count) < minimum {
            throw Failure(path: path, problem: "must have at least \(Self.number(minimum)) members")
        }
        if let maximum = schema["maxProperties"]?.doubleValue, Double(object.count) > maximum {
            throw Failure(path: path, problem: "must have at most \(Self.number(maximum)) members")
        }
        for name in object.keys.sorted() {
            let value = object[name]!
            if let property = properties[name] {
                try check(value, against: property, path: place(path, name), depth: depth + 1, steps: &steps)
            } else if let additional = schema["additionalProperties"] {
                if additional == .bool(false) {
                    throw Failure(path: Self.join(path, name), problem: "is not an argument this tool takes")
                }
                try check(value, against: additional, path: place(path, name), depth: depth + 1, steps: &steps)
            }
        }
    }

    /// A bound of the schema as text: whole numbers without a decimal point (a bound may be any JSON number, so no
    /// conversion that traps on a huge one).
    private static func number(_ value: Double) -> String {
        value.rounded() == value && abs(value) < 1e15 ? "\(Int64(value))" : "\(value)"
    }

    private static func join(_ path: String, _ name: String) -> String { path.isEmpty ? name : "\(path).\(name)" }

    /// JSON equality, with 1 and 1.0 the same number.
    private static func equal(_ a: JSONValue, _ b: JSONValue) -> Bool {
        if let x = a.doubleValue, let y = b.doubleValue, a.kindName != "boolean", b.kindName != "boolean" {
            return x == y
        }
        return a == b
    }

    private static func isDate(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        guard bytes.count == 10, bytes[4] == UInt8(ascii: "-"), bytes[7] == UInt8(ascii: "-") else { return false }
        let digits = [0, 1, 2, 3, 5, 6, 8, 9]
        guard digits.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[$0]) }) else { return false }
        let number = { (range: Range<Int>) in range.reduce(0) { $0 * 10 + Int(bytes[$1] - UInt8(ascii: "0")) } }
        let (year, month, day) = (number(0..<4), number(5..<7), number(8..<10))
        guard (1...12).contains(month), day >= 1 else { return false }
        let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
        let days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]
        return day <= days
    }

    private static func isDateTime(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        guard bytes.count >= 20, bytes.count <= 40, bytes.allSatisfy({ $0 < 0x80 }) else { return false }
        guard isDate(String(decoding: bytes[..<10], as: UTF8.self)), bytes[10] == UInt8(ascii: "T") || bytes[10] == UInt8(ascii: "t")
        else { return false }
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if formatter.date(from: text) != nil { return true }
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.date(from: text) != nil
    }
}
