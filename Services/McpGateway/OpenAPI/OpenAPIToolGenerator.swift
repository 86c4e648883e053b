import Foundation
import JSON
import JWTAuth
import NIOHTTP1
import OpenAPIKit

/// Which operations of a document become tools, and under which names: the operator's choice, in the APIs file
/// (``APISettings``); the document's own `x-mcp-*` extensions say the same per operation.
struct OpenAPIToolSelection: Sendable, Equatable {
    /// Operations matched by all the conditions it lists.
    struct Rule: Sendable, Equatable {
        var operationIDs: Set<String>?
        var tags: Set<String>?
        /// A path with `*` standing for any characters (`/api/todos*`).
        var path: String?
        var methods: Set<String>?

        func matches(operationID: String?, tags operationTags: [String], path operationPath: String, method: String)
            -> Bool
        {
            if let operationIDs, !(operationID.map(operationIDs.contains) ?? false) { return false }
            if let tags, tags.isDisjoint(with: operationTags) { return false }
            if let methods, !methods.contains(method.uppercased()) { return false }
            if let path, !Self.glob(path, matches: operationPath) { return false }
            return true
        }

        /// `*` matches any run of characters, everything else itself.
        static func glob(_ pattern: String, matches text: String) -> Bool {
            let parts = pattern.split(separator: "*", omittingEmptySubsequences: false).map(String.init)
            guard parts.count > 1 else { return pattern == text }
            guard text.hasPrefix(parts[0]) else { return false }
            var rest = Substring(text.dropFirst(parts[0].count))
            for part in parts.dropFirst().dropLast() where !part.isEmpty {
                guard let range = rest.range(of: part) else { return false }
                rest = rest[range.upperBound...]
            }
            return rest.hasSuffix(parts.last!)
        }
    }

    /// When not empty, only operations one of these matches.
    var include: [Rule] = []
    /// Operations none of these matches.
    var exclude: [Rule] = []
    /// Tool names by operationId.
    var rename: [String: String] = [:]
    /// Whether operations the document leaves open to anyone (no `security`, or an empty requirement) become tools;
    /// any signed-in caller may then call them.
    var allowUnauthenticated = false
}

/// Makes the tools of one API from its OpenAPI document (docs/openapi-tools.md says what becomes what).
struct OpenAPIToolGenerator {
    let document: OpenAPIDocument
    let api: API
    var selection = OpenAPIToolSelection()

    /// The tools, read-only ones first; and what was left out and why, for the log.
    struct Output {
        var tools: [OpenAPITool] = []
        var skipped: [String] = []
    }

    typealias Problem = OpenAPIDocument.Problem

    /// Methods in the order their tools are listed within a path.
    private static let methods = ["get", "post", "put", "patch", "delete", "head", "options", "trace", "query"]
    /// Headers the gateway sets itself or that shape the connection: a parameter of this name is not sent.
    static let reservedHeaders: Set<String> = [
        "accept", "authorization", "connection", "content-length", "content-type", "cookie", "dpop", "expect", "host",
        "keep-alive", "proxy-authorization", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade",
        "traceparent", "tracestate", "forwarded", "x-forwarded-for", "x-forwarded-host", "x-forwarded-proto",
        "accept-encoding", "content-encoding", "range", "if-range", "x-http-method-override", "x-http-method",
        "x-method-override", "x-original-url", "x-rewrite-url", "cf-access-jwt-assertion", "cf-access-token",
    ]

    func tools() throws(Problem) -> Output {
        var output = Output()
        var readOnly: [OpenAPITool] = []
        var changing: [OpenAPITool] = []
        let tree = OpenAPIDocumentTree(root: .object(document.root), version: document.version)
        let paths = document.root["paths"]?.objectValue ?? [:]
        var operationIDs: [String: String] = [:]
        var nodes = 0
        for path in document.pathOrder {
            guard let entry = paths[path] else { continue }
            try Self.checkPath(path)
            let item = try Self.place("paths.\(path)") { () throws(Problem) in try tree.dereference(entry) }
            for method in Self.methods {
                guard let value = item[method] else { continue }
                let place = "\(method.uppercased()) \(path)"
                guard case .object(let operation) = value else { throw Problem(description: "\(place) is not an object") }
                if let id = operation["operationId"]?.stringValue {
                    if let other = operationIDs[id] {
                        throw Problem(description: "the operationId '\(id)' names both \(other) and \(place); each must be unique")
                    }
                    operationIDs[id] = place
                }
                let made = try Self.place(place) { () throws(Problem) in
                    try tool(method: method, path: path, item: item, operation: operation, tree: tree)
                }
                switch made {
                case .skipped(let reason): output.skipped.append("\(place): \(reason)")
                case .tool(let tool, let size):
                    nodes += size
                    guard nodes <= Self.maximumNodes else {
                        throw Problem(
                            description: "the tools' schemas have more than \(Self.maximumNodes) values in all once their"
                                + " references are inlined")
                    }
                    if tool.definition.objectValue?["annotations"]?.objectValue?["readOnlyHint"] == .bool(true) {
                        readOnly.append(tool)
                    } else {
                        changing.append(tool)
                    }
                }
            }
        }
        output.tools = readOnly + changing
        return output
    }

    private static func place<T>(_ place: String, _ body: () throws(Problem) -> T) throws(Problem) -> T {
        do { return try body() } catch { throw Problem(description: "\(place): \(error.description)") }
    }

    private enum Made {
        /// The tool, and how many values its schemas have.
        case tool(OpenAPITool, Int)
        case skipped(String)
    }

    /// How many values the schemas of one document's tools may have in all (`tools/list` carries them all).
    static let maximumNodes = 500_000

    /// A path the request is built from: it must begin with `/`, its braces must pair, it may hold only what a path
    /// may (RFC 3986 `pchar`, `/`, and the template's braces), and no segment may be `.` or `..`.
    static func checkPath(_ path: String) throws(Problem) {
        guard path.hasPrefix("/") else { throw Problem(description: "the path '\(path)' does not begin with /") }
        var open = false
        for scalar in path.unicodeScalars {
            switch scalar {
            case "{":
                guard !open else { throw Problem(description: "the path '\(path)' has a { inside a {}") }
                open = true
            case "}":
                guard open else { throw Problem(description: "the path '\(path)' has a } without its {") }
                open = false
            case "a"..."z", "A"..."Z", "0"..."9", "-", ".", "_", "~", "!", "$", "&", "'", "(", ")", "*", "+", ",", ";",
                "=", ":", "@", "/", "%":
                break
            default:
                throw Problem(description: "the path '\(path)' has '\(scalar.escaped(asASCII: true))', which a path may not hold")
            }
        }
        guard !open else { throw Problem(description: "the path '\(path)' has a { without its }") }
        if path.split(separator: "/", omittingEmptySubsequences: false).contains(where: { $0 == "." || $0 == ".." }) {
            throw Problem(description: "the path '\(path)' has a '.' or '..' segment")
        }
    }

    private func tool(
        method: String, path: String, item: [String: JSONValue], operation: [String: JSONValue],
        tree: OpenAPIDocumentTree
    ) throws(Problem) -> Made {
        let operationID = operation["operationId"]?.stringValue
        let tags = operation["tags"]?.stringArrayValue ?? []
        if operation["x-mcp-exclude"] == .bool(true) { return .skipped("x-mcp-exclude") }
        if !selection.include.isEmpty,
            !selection.include.contains(where: {
                $0.matches(operationID: operationID, tags: tags, path: path, method: method)
            })
        {
            return .skipped("not included")
        }
        if selection.exclude.contains(where: { $0.matches(operationID: operationID, tags: tags, path: path, method: method) }) {
            return .skipped("excluded")
        }

        // The arguments: path, query and header parameters (the path item's, overridden by the operation's). Header
        // parameters that carry another credential (the document's apiKey schemes) are never the caller's to set.
        let apiKeyHeaders = Set(
            (document.root["components"]?.objectValue?["securitySchemes"]?.objectValue ?? [:]).values.compactMap {
                scheme -> String? in
                guard let members = scheme.objectValue, members["type"] == "apiKey", members["in"] == "header" else {
                    return nil
                }
                return members["name"]?.stringValue?.lowercased()
            })
        var input = SchemaBuilder(document: tree, direction: .input)
        var parameters: [APIOperation.Parameter] = []
        var properties: [String: JSONValue] = [:]
        var required: [String] = []
        var declared: [String: [String: JSONValue]] = [:]
        var order: [String] = []
        for list in [item["parameters"], operation["parameters"]] {
            guard let list else { continue }
            guard case .array(let entries) = list else { throw Problem(description: "parameters must be a list") }
            for entry in entries {
                let parameter = try tree.dereference(entry)
                guard let name = parameter["name"]?.stringValue, let location = parameter["in"]?.stringValue else {
                    throw Problem(description: "a parameter lacks its name or its 'in'")
                }
                let key = "\(location) \(name)"
                if declared[key] == nil { order.append(key) }
                declared[key] = parameter
            }
        }
        for key in order {
            let parameter = declared[key]!
            let name = parameter["name"]!.stringValue!
            let location = parameter["in"]!.stringValue!
            let isRequired = location == "path" || parameter["required"] == .bool(true)
            let kind: APIOperation.Location
            switch location {
            case "path": kind = .path
            case "query": kind = .query
            case "header":
                guard Self.isToken(name) else { throw Problem(description: "the header parameter '\(name)' is not a valid header name") }
                guard !Self.reservedHeaders.contains(name.lowercased()), !apiKeyHeaders.contains(name.lowercased()) else {
                    if isRequired { return .skipped("its required header \(name) is one the gateway sets itself") }
                    continue
                }
                kind = .header
            default:
                if isRequired { return .skipped("its required \(location) parameter '\(name)' cannot be sent") }
                continue
            }
            var schema: JSONValue
            if let value = parameter["schema"] {
                schema = try input.schema(value)
            } else if case .object(let content)? = parameter["content"], let first = content.values.first,
                let value = first.objectValue?["schema"]
            {
                schema = try input.schema(value)
            } else {
                schema = ["type": "string"]
            }
            let type = schema.objectValue?["type"]
            if type == "object" || type?.stringArrayValue?.contains("object") == true
                || (kind != .query && (type == "array" || type?.stringArrayValue?.contains("array") == true))
            {
                if isRequired { return .skipped("its \(location) parameter '\(name)' is structured, which is not sent yet") }
                continue
            }
            if let description = parameter["description"]?.stringValue, case .object(var members) = schema,
                members["description"] == nil
            {
                members["description"] = .string(description)
                schema = .object(members)
            }
            // Clients refuse argument names outside `A-Z a-z 0-9 _ . -` (1 to 64): `filter[status]` is `filter_status_`.
            let argument = Self.argumentName(name)
            guard properties[argument] == nil else {
                return .skipped("two parameters are named '\(argument)' as arguments; rename one in the document")
            }
            properties[argument] = schema
            if isRequired { required.append(argument) }
            let style = parameter["style"]?.stringValue ?? "form"
            parameters.append(
                APIOperation.Parameter(
                    name: name, argument: argument, location: kind,
                    explode: parameter["explode"]?.boolValue ?? (style == "form"),
                    delimiter: style == "spaceDelimited" ? "%20" : style == "pipeDelimited" ? "%7C" : ","))
        }
        for template in Self.templateVariables(path) where !parameters.contains(where: { $0.location == .path && $0.name == template }) {
            throw Problem(description: "the path variable {\(template)} has no path parameter")
        }

        // The body: JSON only; an object's members become arguments of their own.
        var body = APIOperation.Body.none
        var bodySchema: SchemaValidator?
        var bodyRequired = false
        var contentType = "application/json"
        if let requestValue = operation["requestBody"] {
            let request = try tree.dereference(requestValue)
            bodyRequired = request["required"] == .bool(true)
            let content = request["content"]?.objectValue ?? [:]
            let jsonTypes = content.keys.filter { OpenAPITool.isJSON($0) }.sorted()
            if let media = jsonTypes.first(where: { $0.lowercased().hasPrefix("application/json") }) ?? jsonTypes.first {
                contentType = media
                let schema = try content[media]?.objectValue?["schema"].map { value throws(Problem) in
                    try input.schema(value)
                } ?? [:]
                let members = input.definition(of: schema).objectValue
                let bodyProperties = members?["properties"]?.objectValue
                let clashes = bodyProperties.map { !Set($0.keys).isDisjoint(with: properties.keys) } ?? true
                let plainNames = bodyProperties?.keys.allSatisfy { Self.argumentName($0) == $0 } ?? false
                if let bodyProperties, !clashes, plainNames, members?["allOf"] == nil, members?["oneOf"] == nil,
                    members?["anyOf"] == nil
                {
                    for (name, property) in bodyProperties { properties[name] = property }
                    if bodyRequired { required += members?["required"]?.stringArrayValue ?? [] }
                    body = .members(Set(bodyProperties.keys))
                    bodySchema = SchemaValidator(root: input.finish(schema))
                } else {
                    let name = properties["body"] == nil ? "body" : "request_body"
                    properties[name] = schema
                    if bodyRequired { required.append(name) }
                    body = .argument(name)
                }
            } else if bodyRequired {
                return .skipped("its body is \(content.keys.sorted().joined(separator: ", ")); only JSON bodies are sent")
            }
        }
        var inputSchema: JSONValue = [
            "type": "object", "properties": .object(properties), "additionalProperties": false,
        ]
        if !required.isEmpty { inputSchema.set("required", .array(Array(Set(required)).sorted().map(JSONValue.string))) }
        inputSchema = input.finish(inputSchema)

        // The answer: the first 2xx response with JSON, or none (a 204).
        var outputBuilder = SchemaBuilder(document: tree, direction: .output)
        var outputSchema: JSONValue?
        var wraps = false
        var empty: OpenAPITool.EmptyResult?
        let responses = operation["responses"]?.objectValue ?? [:]
        let success = responses.keys.filter { $0.hasPrefix("2") }.sorted().first
        var successContent: JSONValue?
        if let success, let responseValue = responses[success] {
            let response = try tree.dereference(responseValue)
            let content = response["content"]?.objectValue ?? [:]
            if let media = content.keys.sorted().first(where: { OpenAPITool.isJSON($0) }) {
                successContent = content[media]?.objectValue?["schema"] ?? [:]
            } else if !content.isEmpty {
                return .skipped("it answers \(content.keys.sorted().joined(separator: ", ")); only JSON answers are read")
            }
        }
        if let successContent {
            var schema = try outputBuilder.schema(successContent)
            if case .object(var members) = schema, members["type"] == nil, members["properties"] != nil {
                members["type"] = "object"
                schema = .object(members)
            }
            if schema.objectValue?["type"] == "object" {
                outputSchema = outputBuilder.finish(schema)
            } else if schema.objectValue?["$ref"] != nil, outputBuilder.definition(of: schema).objectValue?["type"] == "object" {
                // A recursive object: MCP wants `type: object` at the top, beside the reference.
                var members = schema.objectValue!
                members["type"] = "object"
                outputSchema = outputBuilder.finish(.object(members))
            } else {
                wraps = true
                outputSchema = outputBuilder.finish(["type": "object", "properties": ["result": schema], "required": ["result"]])
            }
        }
        // An answer without a body says what was done: `{"deleted": true, "id": …}`. Its schema is the output schema
        // only when no body is the documented answer (204); a 2xx without a documented body may still send JSON,
        // passed on as it is.
        let flag = method == "delete" ? "deleted" : "done"
        let echoed = parameters.filter { $0.location == .path }.map(\.argument)
        empty = OpenAPITool.EmptyResult(flag: flag, arguments: echoed)
        if successContent == nil, success == "204" || success == nil {
            var members: [String: JSONValue] = [flag: ["type": "boolean"]]
            for name in echoed { members[name] = properties[name] }
            outputSchema = outputBuilder.finish([
                "type": "object", "properties": .object(members),
                "required": .array(([flag] + echoed).map(JSONValue.string)),
            ])
        }

        // The name and the words.
        let name = try toolName(operation: operation, operationID: operationID, method: method, path: path)
        let summary = operation["summary"]?.stringValue
        let title = operation["x-mcp-title"]?.stringValue ?? summary ?? name
        let description =
            operation["x-mcp-description"]?.stringValue ?? operation["description"]?.stringValue ?? summary
            ?? "\(method.uppercased()) \(path) of the \(api.name)."
        var annotations: [String: JSONValue]
        switch method {
        case "get", "head", "options", "query":
            annotations = ["readOnlyHint": true, "destructiveHint": false, "idempotentHint": true]
        case "put": annotations = ["readOnlyHint": false, "destructiveHint": true, "idempotentHint": true]
        case "delete": annotations = ["readOnlyHint": false, "destructiveHint": true, "idempotentHint": true]
        case "post": annotations = ["readOnlyHint": false, "destructiveHint": false, "idempotentHint": false]
        default: annotations = ["readOnlyHint": false, "destructiveHint": true, "idempotentHint": false]
        }
        annotations["openWorldHint"] = false
        if let extra = operation["x-mcp-annotations"] {
            guard case .object(let members) = extra else { throw Problem(description: "x-mcp-annotations must be an object") }
            for (key, value) in members {
                switch (key, value) {
                case ("readOnlyHint", .bool), ("destructiveHint", .bool), ("idempotentHint", .bool),
                    ("openWorldHint", .bool), ("title", .string):
                    break
                case ("readOnlyHint", _), ("destructiveHint", _), ("idempotentHint", _), ("openWorldHint", _):
                    throw Problem(description: "x-mcp-annotations.\(key) must be true or false")
                default:
                    throw Problem(description: "x-mcp-annotations has '\(key)', which is not an MCP tool annotation")
                }
                annotations[key] = value
            }
        }
        // The scopes: the operation's security, else the document's. A broken operation is an error above even
        // when it would not be a tool; one the operator excluded is not read at all.
        let security = operation["security"] ?? document.root["security"] ?? .array([])
        guard case .array(let requirements) = security else { throw Problem(description: "security must be a list") }
        var alternatives: [ScopeSet] = []
        var open = requirements.isEmpty
        var unusable: [String] = []
        for requirement in requirements {
            guard case .object(let schemes) = requirement else {
                throw Problem(description: "each security requirement must be an object")
            }
            if schemes.isEmpty {
                open = true
                continue
            }
            var scopes = ScopeSet()
            var usable = true
            for (name, listed) in schemes {
                guard let schemeValue = document.root["components"]?.objectValue?["securitySchemes"]?.objectValue?[name]
                else { throw Problem(description: "security names '\(name)', which components.securitySchemes lacks") }
                let scheme = try tree.dereference(schemeValue)
                switch (scheme["type"]?.stringValue, scheme["scheme"]?.stringValue?.lowercased()) {
                // OpenAPI 3.1 lets any scheme list roles; on a bearer token they are scopes the token must carry.
                case ("oauth2", _), ("openIdConnect", _), ("http", "bearer"):
                    scopes = scopes.union(ScopeSet(listed.stringArrayValue ?? []))
                default:
                    usable = false
                    unusable.append(name)
                }
            }
            if usable { alternatives.append(scopes) }
        }
        let scopes: ScopeRequirement
        if open {
            guard selection.allowUnauthenticated else {
                return .skipped("open to anyone (no security requirement) and allow_unauthenticated is not set")
            }
            scopes = .none
        } else if alternatives.isEmpty {
            return .skipped(
                "needs \(unusable.sorted().joined(separator: " or ")), which the gateway cannot present (it sends"
                    + " OAuth bearer tokens)")
        } else if alternatives.contains(where: \.isEmpty) {
            scopes = .none
        } else {
            scopes = ScopeRequirement(alternatives: alternatives)
        }

        var definition: [String: JSONValue] = [
            "name": .string(name), "title": .string(title), "description": .string(description),
            "inputSchema": inputSchema, "annotations": .object(annotations),
        ]
        if let outputSchema { definition["outputSchema"] = outputSchema }
        let operation = APIOperation(
            method: HTTPMethod(rawValue: method.uppercased()), path: path, parameters: parameters, body: body,
            bodyRequired: bodyRequired, contentType: contentType)
        return .tool(
            OpenAPITool(
                name: name, scopes: scopes, definition: .object(definition), operation: operation, api: api,
                input: SchemaValidator(root: inputSchema), bodySchema: bodySchema,
                output: outputSchema.map { SchemaValidator(root: $0) }, wrapsResult: wraps, emptyResult: empty),
            input.nodes + outputBuilder.nodes)
    }

    /// The operator's rename, `x-mcp-name`, the operationId made valid, or the method and path.
    private func toolName(operation: [String: JSONValue], operationID: String?, method: String, path: String)
        throws(Problem) -> String
    {
        // The operator's rename wins over the document's name.
        if let chosen = operationID.flatMap({ selection.rename[$0] }) ?? operation["x-mcp-name"]?.stringValue {
            guard Self.isValidToolName(chosen) else {
                throw Problem(
                    description: "the tool name '\(chosen)' is not valid: use 1 to 128 of A-Z, a-z, 0-9, '_', '-' and '.'")
            }
            return chosen
        }
        let base = operationID ?? "\(method)_\(path)"
        var name = String(base.unicodeScalars.map { Self.isToolNameCharacter($0) ? Character($0) : "_" })
        while name.contains("__") { name = name.replacingOccurrences(of: "__", with: "_") }
        name = name.trimmingCharacters(in: CharacterSet(charactersIn: "_"))
        if name.isEmpty { name = "\(method)_operation" }
        return String(name.prefix(128))
    }

    static func isToolNameCharacter(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar {
        case "A"..."Z", "a"..."z", "0"..."9", "_", "-", ".": true
        default: false
        }
    }

    /// A parameter's name as a tool argument: what clients accept as a property name (1 to 64 of `A-Z a-z 0-9 _ . -`).
    static func argumentName(_ name: String) -> String {
        let cleaned = String(name.unicodeScalars.map { isToolNameCharacter($0) ? Character($0) : "_" }.prefix(64))
        return cleaned.isEmpty ? "_" : cleaned
    }

    /// MCP's tool names: 1 to 128 characters of `A-Z a-z 0-9 _ - .`.
    static func isValidToolName(_ name: String) -> Bool {
        !name.isEmpty && name.unicodeScalars.count <= 128 && name.unicodeScalars.allSatisfy(isToolNameCharacter)
    }

    /// An HTTP header name (RFC 9110 token).
    static func isToken(_ name: String) -> Bool {
        !name.isEmpty
            && name.unicodeScalars.allSatisfy { scalar in
                scalar.isASCII && scalar.value > 0x20 && scalar.value < 0x7F && !"\"(),/:;<=>?@[\\]{}".unicodeScalars.contains(scalar)
            }
    }

    /// The `{names}` of a path template.
    static func templateVariables(_ path: String) -> [String] {
        var names: [String] = []
        var rest = Substring(path)
        while let open = rest.firstIndex(of: "{"), let close = rest[open...].firstIndex(of: "}") {
            names.append(String(rest[rest.index(after: open)..<close]))
            rest = rest[rest.index(after: close)...]
        }
        return names
    }
}

extension JSONValue {
    /// Sets a member of an object (nothing for other values).
    fileprivate mutating func set(_ key: String, _ value: JSONValue) {
        guard case .object(var members) = self else { return }
        members[key] = value
        self = .object(members)
    }
}
