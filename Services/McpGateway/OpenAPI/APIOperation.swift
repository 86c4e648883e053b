import JSON
import NIOCore
import NIOHTTP1
import ServiceSupport

/// How one operation of an API is called: its method, its path template, where each argument goes. Made from the
/// document at start-up (``OpenAPIToolGenerator``); ``request(_:)`` turns a tool call's checked arguments into the HTTP
/// request, and nothing else decides what is sent.
struct APIOperation: Sendable {
    enum Location: String, Sendable { case path, query, header }

    struct Parameter: Sendable {
        /// The name in the request (path template variable, query name, header name).
        let name: String
        /// The tool argument that carries it (the name itself, unless a body member has the same name).
        let argument: String
        let location: Location
        /// Query arrays: `tag=a&tag=b` (`explode`, the default of `form`) or joined by ``delimiter``.
        var explode = true
        /// `,` (`form`), `%20` (`spaceDelimited`) or `|` (`pipeDelimited`), percent-encoded.
        var delimiter = ","
    }

    enum Body: Sendable {
        case none
        /// The body is a JSON object whose members are tool arguments of their own (the usual case: the tool takes
        /// `title` and `due`, not `body.title`).
        case members(Set<String>)
        /// The body is the one argument of this name (an array, a scalar, or an object whose members would clash with
        /// parameters).
        case argument(String)
    }

    let method: HTTPMethod
    /// `/api/todos/{id}`: the document's path, relative to the API's base URL (checked by the generator: a leading
    /// `/`, balanced braces, no dot segments, nothing that is not allowed in a path).
    let path: String
    let parameters: [Parameter]
    let body: Body
    /// Whether the body must be sent; an optional one whose members are all absent is not.
    var bodyRequired = false
    /// The body's media type as the document declares it (`application/json`, `application/vnd.api+json`).
    var contentType = "application/json"

    /// The path, query, headers and body of a call with `arguments` (already checked against the input schema).
    /// Every value is percent-encoded but for RFC 3986's unreserved characters (`RedirectURI.formEncode`; `?`, `#`,
    /// `%`, `&`, `=` and `+` included), so a value is one path segment or one query value and no argument reaches
    /// another route; a path value that is empty, holds a slash or a backslash, or makes a `.` or `..` segment is
    /// refused, and no header value can carry a line break.
    func request(_ arguments: [String: JSONValue]) throws(ToolError) -> KeepAliveHTTPClient.Request {
        var path = ""
        var rest = Substring(self.path)
        while let open = rest.firstIndex(of: "{") {
            path += rest[..<open]
            guard let close = rest[open...].firstIndex(of: "}") else { break }
            let name = String(rest[rest.index(after: open)..<close])
            rest = rest[rest.index(after: close)...]
            guard let parameter = parameters.first(where: { $0.location == .path && $0.name == name }),
                let value = arguments[parameter.argument]
            else { throw ToolError("'\(name)' is required") }
            let text = try Self.text(value, argument: parameter.argument)
            guard !text.isEmpty else { throw ToolError("'\(parameter.argument)' must not be empty") }
            // Encoded, a slash is one segment's text; but servers and proxies that decode `%2F` before routing (and
            // then resolve `..`) would see segments the API never meant. A path value is one segment, or nothing.
            guard !text.contains("/"), !text.contains("\\") else {
                throw ToolError("'\(parameter.argument)' must not contain '/' or '\\': it is one part of the path")
            }
            path += RedirectURI.formEncode(text)
        }
        path += rest
        // Values that are not `.` or `..` on their own can still make one together (`/files/{a}{b}`).
        guard !path.split(separator: "/", omittingEmptySubsequences: false).contains(where: { $0 == "." || $0 == ".." })
        else { throw ToolError("The arguments would make a path with a '.' or '..' segment, which names another route") }
        var query: [String] = []
        var request = KeepAliveHTTPClient.Request(method: method, path: path)
        for parameter in parameters where parameter.location != .path {
            guard let value = arguments[parameter.argument], value != .null else { continue }
            switch parameter.location {
            case .query:
                let name = RedirectURI.formEncode(parameter.name)
                if case .array(let elements) = value {
                    var texts: [String] = []
                    for element in elements { texts.append(try Self.text(element, argument: parameter.argument)) }
                    if parameter.explode {
                        query += texts.map { "\(name)=\(RedirectURI.formEncode($0))" }
                    } else {
                        query.append("\(name)=\(texts.map(RedirectURI.formEncode).joined(separator: parameter.delimiter))")
                    }
                } else {
                    query.append("\(name)=\(RedirectURI.formEncode(try Self.text(value, argument: parameter.argument)))")
                }
            case .header:
                let text = try Self.text(value, argument: parameter.argument)
                guard text.unicodeScalars.allSatisfy({ $0 == "\t" || ($0.value >= 0x20 && $0.value != 0x7F) }) else {
                    throw ToolError("'\(parameter.argument)' must not contain line breaks or control characters")
                }
                request.headers.add(name: parameter.name, value: text)
            case .path: break
            }
        }
        if !query.isEmpty { request.path += "?" + query.joined(separator: "&") }
        let json: JSONValue?
        switch body {
        case .none: json = nil
        case .members(let names):
            let members = arguments.filter { names.contains($0.key) }
            json = members.isEmpty && !bodyRequired ? nil : .object(members)
        case .argument(let name): json = arguments[name]
        }
        if let json {
            request.headers.add(name: "Content-Type", value: contentType)
            request.body = ByteBuffer(bytes: json.serialized())
        }
        return request
    }

    /// A parameter's value as text: strings as they are, numbers and booleans as JSON writes them.
    private static func text(_ value: JSONValue, argument: String) throws(ToolError) -> String {
        switch value {
        case .string(let text): return text
        // 5.0 where the schema says integer is 5, as the API expects it.
        case .double(let number) where number.rounded() == number && abs(number) < 9.0e15: return String(Int64(number))
        case .integer, .double, .bool: return String(decoding: value.serialized(), as: UTF8.self)
        default: throw ToolError("'\(argument)' must be a string, a number or true or false")
        }
    }
}
