import Foundation
import JSON
import OpenAPIKit
import OpenAPIKit30
import OpenAPIKitCompat
import Yams

/// An OpenAPI document the gateway makes tools of: JSON or YAML, OpenAPI 3.0, 3.1 or 3.2.
///
/// OpenAPIKit reads it first and refuses what is not a valid OpenAPI document, with the place and the reason. The tools
/// are then made from the JSON tree itself (``root``), so that every `$ref` resolves by one rule with cycles bounded
/// (OpenAPIKit stops at a schema cycle, which JSON Schema allows), and so that schemas reach MCP clients as their
/// authors wrote them. OpenAPIKit's model is not kept once it has checked the document.
struct OpenAPIDocument: Sendable {
    /// The document as JSON (YAML converted).
    let root: [String: JSONValue]
    /// The major and minor version: `3.0`, `3.1` or `3.2`. In 3.0, schemas are OpenAPI's dialect (`nullable`, boolean
    /// `exclusiveMinimum`), turned into JSON Schema by ``SchemaBuilder``.
    let version: String
    /// The paths in the document's order (the JSON tree's objects have none), which the tools follow.
    let pathOrder: [String]
    /// The scopes its OAuth flows declare, in the document's order, with their descriptions.
    let declaredScopes: [(name: String, description: String?)]
    /// `info.title`, how tool errors name the API ("the Todos API").
    var title: String { root["info"]?.objectValue?["title"]?.stringValue ?? "API" }

    /// The limits that keep a hostile or broken document from exhausting the gateway at start-up.
    static let maximumBytes = 16 * 1024 * 1024
    static let maximumNodes = 2_000_000
    static let maximumDepth = 200

    struct Problem: Error, CustomStringConvertible {
        let description: String
    }

    /// Reads a document's text; `source` names it in errors (a path or a URL).
    static func parse(_ bytes: [UInt8], source: String) throws(Problem) -> OpenAPIDocument {
        guard bytes.count <= maximumBytes else {
            throw Problem(description: "\(source) is \(bytes.count) bytes, more than the \(maximumBytes) allowed")
        }
        let (tree, pathOrder, declaredScopes) = try Self.orderedTree(bytes, source: source)
        guard case .object(let root) = tree else {
            throw Problem(description: "\(source) is not an OpenAPI document (its top level is not an object)")
        }
        guard let declared = root["openapi"]?.stringValue else {
            if root["swagger"] != nil {
                throw Problem(
                    description: "\(source) is a Swagger 2.0 document; convert it to OpenAPI 3 (for example with"
                        + " swagger2openapi) and point the gateway at the result")
            }
            throw Problem(description: "\(source) has no 'openapi' version member: it is not an OpenAPI document")
        }
        let parts = declared.split(separator: ".")
        let version = parts.prefix(2).joined(separator: ".")
        guard ["3.0", "3.1", "3.2"].contains(version) else {
            throw Problem(
                description: "\(source) declares OpenAPI \(declared); the gateway reads versions 3.0, 3.1 and 3.2")
        }
        let json = Data(tree.serialized())
        do {
            if version == "3.0" {
                _ = try JSONDecoder().decode(OpenAPIKit30.OpenAPI.Document.self, from: json)
            } else {
                _ = try JSONDecoder().decode(OpenAPIKit.OpenAPI.Document.self, from: json)
            }
        } catch let problem as Problem {
            throw problem
        } catch {
            throw Problem(
                description: "\(source) is not a valid OpenAPI \(version) document: "
                    + OpenAPIKit.OpenAPI.Error(from: error).localizedDescription)
        }
        return OpenAPIDocument(root: root, version: version, pathOrder: pathOrder, declaredScopes: declaredScopes)
    }

    /// A JSON or YAML text as JSON.
    static func tree(_ bytes: [UInt8], source: String) throws(Problem) -> JSONValue {
        try orderedTree(bytes, source: source).tree
    }

    /// A JSON or YAML text as JSON, and the order of the keys of its top-level `paths`. Both go through the YAML
    /// parser (JSON is YAML's flow style), whose mappings keep their order, within ``maximumNodes`` (aliases can make
    /// a small text a huge tree) and ``maximumDepth``.
    static func orderedTree(_ bytes: [UInt8], source: String) throws(Problem)
        -> (tree: JSONValue, pathOrder: [String], declaredScopes: [(name: String, description: String?)])
    {
        guard bytes.count <= maximumBytes else {
            throw Problem(description: "\(source) is \(bytes.count) bytes, more than the \(maximumBytes) allowed")
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw Problem(description: "\(source) is not UTF-8 text")
        }
        // The YAML parser compares mapping keys whole to refuse duplicates, before any limit here applies: an alias as
        // a key (`? *a9`, `*a9: x`) would have it walk every value the alias expands to.
        if Self.hasAliasAsKey(bytes) {
            throw Problem(description: "\(source) uses a YAML alias as a mapping key, which the gateway does not read")
        }
        let node: Node?
        do { node = try Yams.compose(yaml: text) } catch {
            throw Problem(description: "\(source) is not valid YAML or JSON: \(error)")
        }
        guard let node else { throw Problem(description: "\(source) is empty") }
        var budget = maximumNodes
        let tree = try json(node, depth: 0, budget: &budget, source: source)
        var pathOrder: [String] = []
        if case .mapping(let top) = node, let paths = top["paths"], case .mapping(let mapping) = paths {
            pathOrder = mapping.keys.compactMap(\.string)
        }
        var declaredScopes: [(name: String, description: String?)] = []
        for scheme in node["components"]?["securitySchemes"]?.mapping?.values.map({ $0 }) ?? [] {
            for flow in scheme["flows"]?.mapping?.values.map({ $0 }) ?? [] {
                for (name, description) in flow["scopes"]?.mapping ?? [:] {
                    if let name = name.string { declaredScopes.append((name, description.string)) }
                }
            }
        }
        return (tree, pathOrder, declaredScopes)
    }

    /// Whether an alias (`*name`) stands where a mapping key begins, outside quotes and comments: after `? `, or at
    /// the start of a line, a sequence entry or a flow entry and followed by `:`.
    static func hasAliasAsKey(_ bytes: [UInt8]) -> Bool {
        let (space, tab, newline) = (UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\n"))
        var quote: UInt8? = nil
        var keyMayStart = true
        // A quote opens a quoted scalar only where a value or a key begins; in `don't` it is text.
        var valueMayStart = true
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            defer {
                if quote == nil, ![space, tab, UInt8(ascii: "\r")].contains(byte) {
                    valueMayStart = [UInt8(ascii: ":"), UInt8(ascii: "{"), UInt8(ascii: "["), UInt8(ascii: ","),
                        UInt8(ascii: "-"), UInt8(ascii: "?"), newline].contains(byte)
                }
            }
            if let open = quote {
                if open == UInt8(ascii: "\""), byte == UInt8(ascii: "\\") { index += 2; continue }
                if byte == open { quote = nil }
                index += 1
                continue
            }
            switch byte {
            case newline, UInt8(ascii: "{"), UInt8(ascii: ","), UInt8(ascii: "["):
                keyMayStart = true
            case space, tab, UInt8(ascii: "-"), UInt8(ascii: "\r"):
                break
            case UInt8(ascii: "?") where keyMayStart:
                var next = index + 1
                while next < bytes.count, bytes[next] == space || bytes[next] == tab { next += 1 }
                if next < bytes.count, bytes[next] == UInt8(ascii: "*"), next > index + 1 { return true }
                keyMayStart = false
            case UInt8(ascii: "*") where keyMayStart:
                var next = index + 1
                while next < bytes.count, ![space, tab, newline, UInt8(ascii: ":"), UInt8(ascii: ","), UInt8(ascii: "}"), UInt8(ascii: "]")].contains(bytes[next]) { next += 1 }
                while next < bytes.count, bytes[next] == space || bytes[next] == tab { next += 1 }
                if next < bytes.count, bytes[next] == UInt8(ascii: ":") { return true }
                keyMayStart = false
            case UInt8(ascii: "\""), UInt8(ascii: "'"):
                if keyMayStart || valueMayStart { quote = byte }
                keyMayStart = false
            case UInt8(ascii: "#") where index == 0 || [space, tab, newline].contains(bytes[index - 1]):
                while index < bytes.count, bytes[index] != newline { index += 1 }
                continue
            default:
                keyMayStart = false
            }
            index += 1
        }
        return false
    }

    private static func json(_ node: Node, depth: Int, budget: inout Int, source: String) throws(Problem) -> JSONValue {
        budget -= 1
        guard budget >= 0 else {
            throw Problem(description: "\(source) has more than \(maximumNodes) values (YAML aliases expanded)")
        }
        guard depth <= maximumDepth else {
            throw Problem(description: "\(source) is nested more than \(maximumDepth) levels deep")
        }
        switch node {
        case .scalar(let scalar):
            if scalar.style == .singleQuoted || scalar.style == .doubleQuoted { return .string(scalar.string) }
            switch node.tag.rawValue {
            case Tag.Name.null.rawValue: return .null
            case Tag.Name.bool.rawValue: return node.bool.map(JSONValue.bool) ?? .string(scalar.string)
            case Tag.Name.int.rawValue:
                if let number = node.int { return .integer(Int64(number)) }
                return node.float.map(JSONValue.double) ?? .string(scalar.string)
            case Tag.Name.float.rawValue:
                guard let number = node.float, number.isFinite else { return .string(scalar.string) }
                return .double(number)
            default: return .string(scalar.string)
            }
        case .mapping(let mapping):
            var object: [String: JSONValue] = [:]
            for (key, value) in mapping {
                guard let name = key.string else {
                    throw Problem(description: "\(source) has a mapping key that is not a string (line \(key.mark?.line ?? 0))")
                }
                object[name] = try json(value, depth: depth + 1, budget: &budget, source: source)
            }
            return .object(object)
        case .sequence(let sequence):
            var array: [JSONValue] = []
            for element in sequence { array.append(try json(element, depth: depth + 1, budget: &budget, source: source)) }
            return .array(array)
        case .alias:
            throw Problem(description: "\(source) has a YAML alias the parser did not resolve")
        }
    }
}
