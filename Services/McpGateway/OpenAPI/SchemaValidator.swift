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
/// the field (`'todos[2].title' must be a string`), not a request the API refuses or, worse, takes; and checks the
/// API's answers against the document the same way.
///
/// It asserts the keywords that decide what a value is: `type`, `enum`, `const`, `properties`, `required`,
/// `additionalProperties`, `items`, `prefixItems`, lengths, sizes and bounds, `allOf`/`anyOf`/`oneOf`/`not`, local
/// `$ref`s into `$defs`, and the formats `uuid`, `date` and `date-time`. It leaves `pattern` to the API: a regular
/// expression run on hostile text by a backtracking engine is a denial of service waiting for its input.
///
/// The schema is compiled once, when the tool is made, into nodes that hold what each keyword says: a call checks
/// against those, not against the JSON of the schema, whose keywords would otherwise be looked up by name on every
/// value of every answer.
struct SchemaValidator: Sendable {
    /// The schema holding `$defs`.
    let root: JSONValue
    private let nodes: [Node]

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

    init(root: JSONValue) {
        self.root = root
        var compiler = Compiler(definitions: root.objectValue?["$defs"]?.objectValue ?? [:])
        _ = compiler.compile(root)
        self.nodes = compiler.nodes
    }

    func validate(_ value: JSONValue) throws(Failure) {
        var steps = 0
        do { try check(value, node: 0, path: "", depth: 0, steps: &steps) } catch {
            var described = self
            described.describing = true
            steps = 0
            try described.check(value, node: 0, path: "", depth: 0, steps: &steps)
            throw error
        }
    }

    // MARK: The compiled schema

    private enum Format: Sendable { case uuid, date, dateTime }

    private struct Types: OptionSet, Sendable {
        let rawValue: UInt8
        static let string = Types(rawValue: 1)
        static let integer = Types(rawValue: 2)
        static let number = Types(rawValue: 4)
        static let boolean = Types(rawValue: 8)
        static let array = Types(rawValue: 16)
        static let object = Types(rawValue: 32)
        static let null = Types(rawValue: 64)
    }

    /// What one schema says, with its subschemas as indices into ``nodes``. A class, so that reading a node costs a
    /// reference, not a copy of every field; nodes are filled while compiling and never changed afterwards.
    private final class Node: @unchecked Sendable {
        var never = false
        var reference: Int?
        /// A `$ref` that names no definition: nothing can be checked against it.
        var unresolved: String?
        var types: Types = []
        var typeNames: [String] = []
        var enumValues: [JSONValue]?
        var constValue: JSONValue?
        var minLength: Double?
        var maxLength: Double?
        var format: Format?
        var minimum: Double?
        var maximum: Double?
        var exclusiveMinimum: Double?
        var exclusiveMaximum: Double?
        var minItems: Double?
        var maxItems: Double?
        var prefixItems: [Int] = []
        var items: Int?
        var uniqueItems = false
        var properties: [String: Int] = [:]
        var required: [String] = []
        var additionalForbidden = false
        var additional: Int?
        var minProperties: Double?
        var maxProperties: Double?
        var allOf: [Int] = []
        var anyOf: [Int] = []
        var oneOf: [Int] = []
        var not: Int?
    }

    private struct Compiler {
        let definitions: [String: JSONValue]
        var nodes: [Node] = []
        /// The node of each definition compiled so far (a recursive one refers to itself by it).
        var compiledDefinitions: [String: Int] = [:]

        /// The node of `schema`; a definition's is registered under its `name` before its body is compiled, so that
        /// a definition that refers to itself finds itself.
        mutating func compile(_ schema: JSONValue, definition name: String? = nil) -> Int {
            let index = nodes.count
            let node = Node()
            nodes.append(node)
            if let name { compiledDefinitions[name] = index }
            switch schema {
            case .bool(false): node.never = true
            case .object(let members): fill(node, from: members)
            default: break
            }
            return index
        }

        private mutating func definition(_ name: String) -> Int? {
            if let known = compiledDefinitions[name] { return known }
            guard let schema = definitions[name] else { return nil }
            return compile(schema, definition: name)
        }

        private mutating func fill(_ node: Node, from members: [String: JSONValue]) {
            if case .string(let reference)? = members["$ref"] {
                let prefix = "#/$defs/"
                if reference.hasPrefix(prefix), let target = definition(String(reference.dropFirst(prefix.count))) {
                    node.reference = target
                } else {
                    node.unresolved = reference
                }
            }
            if let type = members["type"] {
                node.typeNames = type.stringValue.map { [$0] } ?? type.stringArrayValue ?? []
                for name in node.typeNames {
                    switch name {
                    case "string": node.types.insert(.string)
                    case "integer": node.types.insert(.integer)
                    case "number": node.types.insert(.number)
                    case "boolean": node.types.insert(.boolean)
                    case "array": node.types.insert(.array)
                    case "object": node.types.insert(.object)
                    case "null": node.types.insert(.null)
                    default: break
                    }
                }
            }
            node.enumValues = members["enum"]?.arrayValue
            node.constValue = members["const"]
            node.minLength = members["minLength"]?.doubleValue
            node.maxLength = members["maxLength"]?.doubleValue
            switch members["format"]?.stringValue {
            case "uuid"?: node.format = .uuid
            case "date"?: node.format = .date
            case "date-time"?: node.format = .dateTime
            default: break
            }
            node.minimum = members["minimum"]?.doubleValue
            node.maximum = members["maximum"]?.doubleValue
            node.exclusiveMinimum = members["exclusiveMinimum"]?.doubleValue
            node.exclusiveMaximum = members["exclusiveMaximum"]?.doubleValue
            node.minItems = members["minItems"]?.doubleValue
            node.maxItems = members["maxItems"]?.doubleValue
            node.prefixItems = (members["prefixItems"]?.arrayValue ?? []).map { compile($0) }
            node.items = members["items"].map { compile($0) }
            node.uniqueItems = members["uniqueItems"] == .bool(true)
            for (name, property) in members["properties"]?.objectValue ?? [:] { node.properties[name] = compile(property) }
            node.required = members["required"]?.stringArrayValue ?? []
            if let additional = members["additionalProperties"] {
                if additional == .bool(false) { node.additionalForbidden = true } else { node.additional = compile(additional) }
            }
            node.minProperties = members["minProperties"]?.doubleValue
            node.maxProperties = members["maxProperties"]?.doubleValue
            node.allOf = (members["allOf"]?.arrayValue ?? []).map { compile($0) }
            node.anyOf = (members["anyOf"]?.arrayValue ?? []).map { compile($0) }
            node.oneOf = (members["oneOf"]?.arrayValue ?? []).map { compile($0) }
            node.not = members["not"].map { compile($0) }
        }
    }

    // MARK: Checking

    /// The place of a member or an item, when failures are described.
    private func place(_ path: String, _ name: String) -> String { describing ? Self.join(path, name) : "" }
    private func place(_ path: String, _ index: Int) -> String { describing ? "\(path)[\(index)]" : "" }

    private func check(_ value: JSONValue, node index: Int, path: String, depth: Int, steps: inout Int) throws(Failure) {
        guard depth <= Self.maximumDepth else { throw Failure(path: path, problem: "is nested too deeply") }
        steps += 1
        guard steps <= Self.maximumSteps else { throw Failure(path: path, problem: "is too complex to check") }
        let node = nodes[index]
        if node.never { throw Failure(path: path, problem: "is not allowed") }
        if let unresolved = node.unresolved {
            throw Failure(path: path, problem: "cannot be checked: its schema refers to \(unresolved)")
        }
        if let reference = node.reference {
            try check(value, node: reference, path: path, depth: depth + 1, steps: &steps)
        }
        if !node.types.isEmpty { try checkType(value, node, path: path) }
        if let allowed = node.enumValues, !allowed.contains(where: { Self.equal($0, value) }) {
            let listed = allowed.prefix(10).map { String(decoding: $0.serialized(), as: UTF8.self) }
            throw Failure(path: path, problem: "must be one of \(listed.joined(separator: ", "))")
        }
        if let constant = node.constValue, !Self.equal(constant, value) {
            throw Failure(path: path, problem: "must be \(String(decoding: constant.serialized(), as: UTF8.self))")
        }
        switch value {
        case .string(let text): try checkString(text, node, path: path)
        case .integer, .double: try checkNumber(value.doubleValue ?? 0, node, path: path)
        case .array(let elements): try checkArray(elements, node, path: path, depth: depth, steps: &steps)
        case .object(let object): try checkObject(object, node, path: path, depth: depth, steps: &steps)
        default: break
        }
        for part in node.allOf { try check(value, node: part, path: path, depth: depth + 1, steps: &steps) }
        if !node.anyOf.isEmpty {
            var first: Failure?
            var matched = false
            for part in node.anyOf {
                do {
                    try check(value, node: part, path: path, depth: depth + 1, steps: &steps)
                    matched = true
                    break
                } catch {
                    if steps > Self.maximumSteps { throw error }
                    first = first ?? error
                }
            }
            if !matched, let first { throw first }
        }
        if !node.oneOf.isEmpty {
            var matches = 0
            var first: Failure?
            for part in node.oneOf {
                do {
                    try check(value, node: part, path: path, depth: depth + 1, steps: &steps)
                    matches += 1
                } catch {
                    if steps > Self.maximumSteps { throw error }
                    first = first ?? error
                }
            }
            if matches == 0, let first { throw first }
            if matches > 1 { throw Failure(path: path, problem: "matches more than one of the schemas it may match") }
        }
        if let not = node.not {
            let matched = (try? check(value, node: not, path: path, depth: depth + 1, steps: &steps)) != nil
            if steps > Self.maximumSteps { throw Failure(path: path, problem: "is too complex to check") }
            if matched { throw Failure(path: path, problem: "is a value it must not be") }
        }
    }

    private func checkType(_ value: JSONValue, _ node: Node, path: String) throws(Failure) {
        let matches: Bool =
            switch value {
            case .string: node.types.contains(.string)
            case .bool: node.types.contains(.boolean)
            case .array: node.types.contains(.array)
            case .object: node.types.contains(.object)
            case .null: node.types.contains(.null)
            case .integer: !node.types.isDisjoint(with: [.integer, .number])
            case .double(let number):
                node.types.contains(.number)
                    || (node.types.contains(.integer) && number.rounded() == number && abs(number) < 9.0e15)
            }
        guard !matches else { return }
        let names = node.typeNames.filter { ["string", "integer", "number", "boolean", "array", "object", "null"].contains($0) }
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

    private func checkString(_ text: String, _ node: Node, path: String) throws(Failure) {
        if node.minLength != nil || node.maxLength != nil {
            let length = Double(text.unicodeScalars.count)
            if let minimum = node.minLength, length < minimum {
                throw Failure(
                    path: path,
                    problem: minimum == 1 ? "must not be empty" : "must be at least \(Self.number(minimum)) characters")
            }
            if let maximum = node.maxLength, length > maximum {
                throw Failure(path: path, problem: "must be at most \(Self.number(maximum)) characters")
            }
        }
        switch node.format {
        case .uuid?:
            guard Self.isUUID(text) else { throw Failure(path: path, problem: "must be a UUID") }
        case .date?:
            guard Self.isDate(Array(text.utf8)) else { throw Failure(path: path, problem: "must be a date, YYYY-MM-DD") }
        case .dateTime?:
            guard Self.isDateTime(text) else {
                throw Failure(path: path, problem: "must be a date and time (RFC 3339), e.g. 2026-12-07T10:00:00Z")
            }
        case nil: break
        }
    }

    private func checkNumber(_ number: Double, _ node: Node, path: String) throws(Failure) {
        if let minimum = node.minimum, number < minimum {
            throw Failure(path: path, problem: "must be at least \(Self.number(minimum))")
        }
        if let maximum = node.maximum, number > maximum {
            throw Failure(path: path, problem: "must be at most \(Self.number(maximum))")
        }
        if let minimum = node.exclusiveMinimum, number <= minimum {
            throw Failure(path: path, problem: "must be more than \(Self.number(minimum))")
        }
        if let maximum = node.exclusiveMaximum, number >= maximum {
            throw Failure(path: path, problem: "must be less than \(Self.number(maximum))")
        }
    }

    private func checkArray(_ elements: [JSONValue], _ node: Node, path: String, depth: Int, steps: inout Int)
        throws(Failure)
    {
        if let minimum = node.minItems, Double(elements.count) < minimum {
            throw Failure(path: path, problem: "must have at least \(Self.number(minimum)) items")
        }
        if let maximum = node.maxItems, Double(elements.count) > maximum {
            throw Failure(path: path, problem: "must have at most \(Self.number(maximum)) items")
        }
        for (index, element) in elements.prefix(node.prefixItems.count).enumerated() {
            try check(element, node: node.prefixItems[index], path: place(path, index), depth: depth + 1, steps: &steps)
        }
        if let items = node.items {
            for index in elements.indices.dropFirst(node.prefixItems.count) {
                try check(elements[index], node: items, path: place(path, index), depth: depth + 1, steps: &steps)
            }
        }
        if node.uniqueItems, elements.count > 1, Set(elements).count < elements.count {
            throw Failure(path: path, problem: "must not repeat an item")
        }
    }

    private func checkObject(_ object: [String: JSONValue], _ node: Node, path: String, depth: Int, steps: inout Int)
        throws(Failure)
    {
        for name in node.required where object[name] == nil {
            throw Failure(path: Self.join(path, name), problem: "is required")
        }
        if let minimum = node.minProperties, Double(object.count) < minimum {
            let names = node.properties.keys.sorted()
            throw Failure(
                path: path,
                problem: "must have at least \(Self.number(minimum)) members"
                    + (names.isEmpty ? "" : " (of \(names.joined(separator: ", ")))"))
        }
        if let maximum = node.maxProperties, Double(object.count) > maximum {
            throw Failure(path: path, problem: "must have at most \(Self.number(maximum)) members")
        }
        // In the object's own order when nothing fails; sorted when describing, so that the first failure named is
        // the same on every run.
        let names = describing ? object.keys.sorted() : Array(object.keys)
        for name in names {
            let value = object[name]!
            if let property = node.properties[name] {
                try check(value, node: property, path: place(path, name), depth: depth + 1, steps: &steps)
            } else if node.additionalForbidden {
                throw Failure(path: Self.join(path, name), problem: "is not an argument this tool takes")
            } else if let additional = node.additional {
                try check(value, node: additional, path: place(path, name), depth: depth + 1, steps: &steps)
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
        switch (a, b) {
        case (.integer, .double), (.double, .integer): return a.doubleValue == b.doubleValue
        default: return a == b
        }
    }

    /// `8-4-4-4-12` hexadecimal digits, either case (Foundation's parser goes through `sscanf`, which every todo of
    /// every answer would pay for).
    private static func isUUID(_ text: String) -> Bool {
        var count = 0
        for byte in text.utf8 {
            switch count {
            case 8, 13, 18, 23: guard byte == UInt8(ascii: "-") else { return false }
            default:
                guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(byte | 0x20)
                else { return false }
            }
            count += 1
            if count > 36 { return false }
        }
        return count == 36
    }

    private static func isDate(_ bytes: [UInt8]) -> Bool {
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
        guard isDate(Array(bytes[..<10])), bytes[10] == UInt8(ascii: "T") || bytes[10] == UInt8(ascii: "t") else {
            return false
        }
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if formatter.date(from: text) != nil { return true }
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.date(from: text) != nil
    }
}
