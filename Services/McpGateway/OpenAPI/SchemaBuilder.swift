import Foundation
import JSON

/// Makes the self-contained JSON Schema (2020-12) of one tool's input or output from the schemas of an OpenAPI
/// document: every `$ref` of the document inlined, a reference that comes back to itself (a tree, a linked list) kept
/// once under `$defs`, OpenAPI 3.0's dialect turned into JSON Schema, and what a client has no use for left out.
///
/// One builder serves one tool schema: the `$defs` it collects go on the schema ``finish(_:)`` returns.
struct SchemaBuilder {
    /// Whether the schema describes what the client sends (`readOnly` members are left out) or what it gets back
    /// (`writeOnly` members are left out).
    enum Direction { case input, output }

    let document: OpenAPIDocumentTree
    let direction: Direction
    /// How many values the schema may have once references are inlined: a document whose references fan out can
    /// otherwise turn a few lines into millions.
    static let maximumNodes = 50_000

    /// How deep a schema may nest once references are inlined, and how long a chain of references may be.
    static let maximumDepth = 64

    private var definitions: [String: JSONValue] = [:]
    /// The `$defs` name of each reference found to be recursive.
    private var recursive: [String: String] = [:]
    /// How many values the schemas made so far have (the generator also bounds the sum over a document).
    private(set) var nodes = 0

    init(document: OpenAPIDocumentTree, direction: Direction) {
        self.document = document
        self.direction = direction
    }

    /// The schema `value` of the document (a Schema Object or a reference to one), with references resolved.
    mutating func schema(_ value: JSONValue) throws(OpenAPIDocument.Problem) -> JSONValue {
        try expand(value, references: [], depth: 0)
    }

    /// `schema` itself, or the definition it refers to when it is a reference into the collected `$defs`.
    func definition(of schema: JSONValue) -> JSONValue {
        guard case .string(let reference)? = schema.objectValue?["$ref"], reference.hasPrefix("#/$defs/"),
            let definition = definitions[String(reference.dropFirst("#/$defs/".count))]
        else { return schema }
        return definition
    }

    /// `schema` with the `$defs` collected on the way.
    func finish(_ schema: JSONValue) -> JSONValue {
        guard !definitions.isEmpty, case .object(var members) = schema else { return schema }
        members["$defs"] = .object(definitions)
        return .object(members)
    }

    /// Keywords whose values are data, not schemas: never searched for references.
    private static let dataKeywords: Set<String> = ["enum", "const", "default", "examples", "example"]
    /// Keywords whose values map names (of members, of definitions) to schemas: the names are data, each value a schema.
    private static let schemaMaps: Set<String> = [
        "properties", "patternProperties", "$defs", "definitions", "dependentSchemas",
    ]
    /// OpenAPI's own members of a Schema Object, meaningless to a JSON Schema validator.
    private static let openAPIOnly: Set<String> = ["discriminator", "xml", "externalDocs", "nullable", "example"]

    private mutating func count() throws(OpenAPIDocument.Problem) {
        nodes += 1
        guard nodes <= Self.maximumNodes else {
            throw OpenAPIDocument.Problem(
                description: "a schema has more than \(Self.maximumNodes) values once its references are inlined")
        }
    }

    private mutating func expand(_ value: JSONValue, references: [String], depth: Int)
        throws(OpenAPIDocument.Problem) -> JSONValue
    {
        try count()
        guard depth <= Self.maximumDepth, references.count <= Self.maximumDepth else {
            throw OpenAPIDocument.Problem(
                description: "a schema nests more than \(Self.maximumDepth) levels deep once its references are inlined")
        }
        switch value {
        case .object(let members):
            if case .string(let reference)? = members["$ref"] {
                return try expandReference(reference, siblings: members, references: references, depth: depth)
            }
            return .object(try expandSchemaObject(members, references: references, depth: depth))
        case .array(let elements):
            var expanded: [JSONValue] = []
            for element in elements { expanded.append(try expand(element, references: references, depth: depth + 1)) }
            return .array(expanded)
        default:
            return value
        }
    }

    private mutating func expandReference(
        _ reference: String, siblings: [String: JSONValue], references: [String], depth: Int
    ) throws(OpenAPIDocument.Problem) -> JSONValue {
        var result: JSONValue
        if let name = recursive[reference] {
            result = ["$ref": .string("#/$defs/\(name)")]
        } else if references.contains(reference) {
            let name = definitionName(for: reference)
            recursive[reference] = name
            result = ["$ref": .string("#/$defs/\(name)")]
        } else {
            let target = try document.resolve(reference)
            let expanded = try expand(target, references: references + [reference], depth: depth + 1)
            if let name = recursive[reference] {
                // Found recursive while expanding it: the definition is this expansion, and every use refers to it.
                definitions[name] = expanded
                result = ["$ref": .string("#/$defs/\(name)")]
            } else {
                result = expanded
            }
        }
        // A reference's siblings (3.1 allows them: a description, a default) apply as well.
        var rest = siblings
        rest.removeValue(forKey: "$ref")
        guard !rest.isEmpty else { return result }
        let more = try expandSchemaObject(rest, references: references, depth: depth)
        if case .object(var target) = result, target["$ref"] == nil {
            for (key, value) in more where target[key] == nil { target[key] = value }
            return .object(target)
        }
        var wrapped = more
        wrapped["allOf"] = [result]
        return .object(wrapped)
    }

    private mutating func definitionName(for reference: String) -> String {
        let last = reference.split(separator: "/").last.map(String.init) ?? "schema"
        let base = String(last.map { $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" || $0 == "." ? $0 : "_" })
        var name = base.isEmpty ? "schema" : base
        var number = 2
        while recursive.values.contains(name) {
            name = "\(base)_\(number)"
            number += 1
        }
        return name
    }

    private mutating func expandSchemaObject(_ members: [String: JSONValue], references: [String], depth: Int)
        throws(OpenAPIDocument.Problem) -> [String: JSONValue]
    {
        var schema: [String: JSONValue] = [:]
        for (key, value) in members {
            if key.hasPrefix("x-") || Self.openAPIOnly.contains(key) { continue }
            if Self.dataKeywords.contains(key) {
                schema[key] = value
                continue
            }
            if Self.schemaMaps.contains(key), case .object(let entries) = value {
                var expanded: [String: JSONValue] = [:]
                for (name, entry) in entries { expanded[name] = try expand(entry, references: references, depth: depth + 1) }
                schema[key] = .object(expanded)
                continue
            }
            schema[key] = try expand(value, references: references, depth: depth + 1)
        }
        if document.version == "3.0" { Self.convertFrom30(members, into: &schema) }
        if case .object(var properties)? = schema["properties"] {
            let hidden = direction == .input ? "readOnly" : "writeOnly"
            let dropped = properties.filter { $0.value.objectValue?[hidden] == .bool(true) }.map(\.key)
            if !dropped.isEmpty {
                for name in dropped { properties.removeValue(forKey: name) }
                schema["properties"] = .object(properties)
                if case .array(let required)? = schema["required"] {
                    schema["required"] = .array(required.filter { !dropped.contains($0.stringValue ?? "") })
                }
            }
        }
        return schema
    }

    /// OpenAPI 3.0's Schema Object is an older JSON Schema with keywords of its own: `nullable`, boolean
    /// `exclusiveMinimum`/`exclusiveMaximum`, a single `example`.
    private static func convertFrom30(_ original: [String: JSONValue], into schema: inout [String: JSONValue]) {
        if original["nullable"] == .bool(true) {
            if case .string(let type)? = schema["type"] { schema["type"] = [.string(type), "null"] }
            if case .array(let values)? = schema["enum"], !values.contains(.null) { schema["enum"] = .array(values + [.null]) }
        }
        for (flag, bound) in [("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")] {
            guard case .bool(let exclusive)? = original[flag] else { continue }
            schema.removeValue(forKey: flag)
            if exclusive, let limit = schema[bound] {
                schema[flag] = limit
                schema.removeValue(forKey: bound)
            }
        }
        if let example = original["example"], schema["examples"] == nil { schema["examples"] = [example] }
    }
}

/// The JSON tree of a document, for resolving its `$ref`s.
struct OpenAPIDocumentTree: Sendable {
    let root: JSONValue
    let version: String

    /// The value a local reference (`#/components/schemas/Todo`, any JSON Pointer into the document) points at.
    func resolve(_ reference: String) throws(OpenAPIDocument.Problem) -> JSONValue {
        guard reference.hasPrefix("#") else {
            throw OpenAPIDocument.Problem(
                description: "the reference '\(reference)' points outside the document; bundle the document into one"
                    + " file (for example with redocly bundle) so that every $ref starts with #")
        }
        var value = root
        let pointer = String(reference.dropFirst())
        guard pointer.isEmpty || pointer.hasPrefix("/") else {
            throw OpenAPIDocument.Problem(description: "the reference '\(reference)' is not a JSON Pointer")
        }
        for token in pointer.split(separator: "/", omittingEmptySubsequences: false).dropFirst() {
            let key = (String(token).removingPercentEncoding ?? String(token))
                .replacingOccurrences(of: "~1", with: "/").replacingOccurrences(of: "~0", with: "~")
            switch value {
            case .object(let members) where members[key] != nil: value = members[key]!
            case .array(let elements) where Int(key).map(elements.indices.contains) == true: value = elements[Int(key)!]
            default:
                throw OpenAPIDocument.Problem(description: "the reference '\(reference)' points at nothing in the document")
            }
        }
        return value
    }

    /// `value` itself, or what it refers to when it is a Reference Object (parameters, request bodies, responses),
    /// following chains of references within a bound.
    func dereference(_ value: JSONValue) throws(OpenAPIDocument.Problem) -> [String: JSONValue] {
        var current = value
        for _ in 0..<32 {
            guard case .object(let members) = current else {
                throw OpenAPIDocument.Problem(description: "expected an object or a $ref, found \(current.kindName)")
            }
            guard case .string(let reference)? = members["$ref"] else { return members }
            current = try resolve(reference)
        }
        throw OpenAPIDocument.Problem(description: "a chain of more than 32 references, or a reference cycle")
    }
}
