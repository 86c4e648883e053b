import Foundation
import JSON
import JWTAuth
import Logging
import NIOCore
import NIOHTTP1
import ServiceSupport

/// A tool made from one operation of an OpenAPI document (``OpenAPIToolGenerator``). A call checks the arguments
/// against the input schema, gets a token for exactly the operation's scopes at the API's audience, sends the request
/// ``APIOperation`` builds, and reads the answer as the document describes it.
struct OpenAPITool: GatewayTool {
    let name: String
    let scopes: ScopeRequirement
    let definition: JSONValue
    let operation: APIOperation
    let api: API
    /// The input schema, with its `$defs`.
    let input: SchemaValidator
    /// The request body's own schema, when its members are arguments: what the input schema cannot say of the body
    /// as a whole (`minProperties`) is checked against it.
    let bodySchema: SchemaValidator?
    /// The JSON success answer's schema; `nil` when the document gives none.
    let output: SchemaValidator?
    /// How a JSON answer that is not an object becomes structured content (MCP's is always an object).
    let wrapsResult: Bool
    /// The structured content of a success without a body (204): `{"deleted": true, "id": …}` for a DELETE.
    let emptyResult: EmptyResult?

    struct EmptyResult: Sendable {
        /// `deleted` for DELETE, else `done`.
        let flag: String
        /// The path parameters echoed back (the id of what was deleted).
        let arguments: [String]
    }

    func call(_ arguments: ToolArguments, caller: ToolCaller) async throws(ToolError) -> ToolResult {
        do {
            try input.validate(.object(arguments.values))
            if let bodySchema, case .members(let names) = operation.body {
                let members = arguments.values.filter { names.contains($0.key) }
                if operation.bodyRequired || !members.isEmpty { try bodySchema.validate(.object(members)) }
            }
        } catch { throw ToolError(error.message) }
        var request = try operation.request(arguments.values)
        if caller.isMachine { return ToolResult(.noUser, api: api.name) }
        let credential: DownstreamCredential
        do {
            credential = try await caller.credentials.credential(
                scope: scopes.chosen(for: caller.scope) ?? [], audience: api.audience)
        } catch { return ToolResult(error, api: api.name) }
        switch credential {
        case .bearer(let token): request.headers.replaceOrAdd(name: "Authorization", value: "Bearer \(token)")
        }
        request.headers.replaceOrAdd(name: "Accept", value: "application/json")
        if let trace = caller.trace {
            request.headers.replaceOrAdd(name: "traceparent", value: trace.traceparent)
            if let state = trace.tracestate { request.headers.replaceOrAdd(name: "tracestate", value: state) }
        }
        let response: KeepAliveHTTPClient.Response
        do {
            response = try await api.http.execute(request, timeout: api.timeout)
        } catch {
            api.logger.error(
                "The API did not answer",
                metadata: [
                    "api": "\(api.name)", "http.url": "\(api.baseURL)\(operation.path)",
                    "http.method": "\(operation.method)", "error": "\(error)",
                ])
            switch error {
            case .timedOut:
                GatewayMetrics.dependencyFailure(.api, timedOut: true)
                return ToolResult(.timedOut, api: api.name)
            case .responseTooLarge(let limit):
                return ToolResult(.tooLarge(limit: limit), api: api.name)
            default:
                GatewayMetrics.dependencyFailure(.api, timedOut: false)
                return ToolResult(.unreachable, api: api.name)
            }
        }
        return answer(response, arguments: arguments.values)
    }

    /// The tool result of the API's answer.
    func answer(_ response: KeepAliveHTTPClient.Response, arguments: [String: JSONValue]) -> ToolResult {
        let status = Int(response.status.code)
        let bytes = response.body.readableBytesView
        let isJSON = Self.isJSON(response.headers.first(name: "Content-Type"))
        guard (200...299).contains(status) else {
            let message = isJSON ? (try? JSONValue(parsing: bytes)).flatMap(Self.errorMessage) : nil
            let failure: APIFailure
            switch status {
            case 401: failure = .unauthorized(message ?? "invalid token")
            case 403: failure = .forbidden(message ?? "insufficient scope")
            case 404: failure = .notFound(message ?? "no such resource")
            case 400..<500: failure = .rejected(message ?? "HTTP \(status)")
            default:
                api.logger.error(
                    "The API failed",
                    metadata: ["api": "\(api.name)", "http.url": "\(api.baseURL)\(operation.path)", "http.status": "\(status)"])
                failure = .failed(status: status)
            }
            return ToolResult(failure, api: api.name)
        }
        guard !bytes.isEmpty else {
            guard let emptyResult else {
                return ToolResult(.unexpectedBody("an empty answer (HTTP \(status)) where JSON was expected"), api: api.name)
            }
            var result: [String: JSONValue] = [emptyResult.flag: true]
            for name in emptyResult.arguments { result[name] = arguments[name] }
            return .success(.object(result))
        }
        guard isJSON else {
            let type = response.headers.first(name: "Content-Type") ?? "no content type"
            return ToolResult(.unexpectedBody("\(type), not JSON"), api: api.name)
        }
        guard bytes.count <= api.maximumResultBytes else {
            // Cut on a character boundary, and said so: the model gets the beginning and knows it is not all.
            var prefix = Array(bytes.prefix(api.maximumResultBytes))
            while let last = prefix.last, last & 0xC0 == 0x80 { prefix.removeLast() }
            if let last = prefix.last, last >= 0xC0 { prefix.removeLast() }
            return .failure(
                "The \(api.name) answered with \(bytes.count / 1024) KiB, more than the \(api.maximumResultBytes / 1024)"
                    + " KiB the gateway passes on; ask for less (a filter or a page, if the tool has one). The answer"
                    + " begins:\n" + String(decoding: prefix, as: UTF8.self))
        }
        guard let parsed = try? JSONParser.parse(bytes) else {
            return ToolResult(.unexpectedBody("JSON that does not parse"), api: api.name)
        }
        let wrapped = wrapsResult || parsed.value.objectValue == nil
        let structured: JSONValue = wrapped ? ["result": parsed.value] : parsed.value
        if let output {
            do { try output.validate(structured) } catch {
                api.logger.warning(
                    "The API answered with a body its document does not describe",
                    metadata: ["api": "\(api.name)", "http.url": "\(api.baseURL)\(operation.path)", "problem": "\(error.message)"])
                return ToolResult(.unexpectedBody("\(error.message), which its document does not allow"), api: api.name)
            }
        }
        // The API's own text, checked and strict, is passed on instead of being written again; but not when an object
        // in it names a member twice, where another reader could take the member that was not checked.
        guard parsed.namesAreUnique else { return .success(structured) }
        return .success(structured, text: Self.text(of: bytes, wrapped: wrapped))
    }

    /// The API's JSON text without the whitespace around it, inside `{"result":…}` when `wrapped`.
    static func text(of bytes: some BidirectionalCollection<UInt8>, wrapped: Bool) -> [UInt8] {
        func isWhitespace(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D }
        var start = bytes.startIndex
        var end = bytes.endIndex
        while start < end, isWhitespace(bytes[start]) { bytes.formIndex(after: &start) }
        while start < end, isWhitespace(bytes[bytes.index(before: end)]) { bytes.formIndex(before: &end) }
        let trimmed = bytes[start..<end]
        guard wrapped else { return Array(trimmed) }
        var text = Array(#"{"result":"#.utf8)
        text.reserveCapacity(bytes.count + 11)
        text.append(contentsOf: trimmed)
        text.append(UInt8(ascii: "}"))
        return text
    }

    /// Whether a `Content-Type` is JSON (`application/json`, `application/problem+json`, any `+json`); a missing one
    /// is taken as JSON, as the document promised.
    static func isJSON(_ contentType: String?) -> Bool {
        guard let contentType else { return true }
        let type = MediaType.essence(contentType)
        return type == "application/json" || (type.hasSuffix("+json") && type.utf8.count > "+json".utf8.count)
    }

    /// What an error answer says, in the shapes APIs use: OAuth's `error_description`, RFC 9457 problem details
    /// (`detail`, else `title`), FastAPI's `detail` (a string, or a list of `{loc, msg}`), a bare `message` or `error`.
    static func errorMessage(_ body: JSONValue) -> String? {
        guard case .object(let object) = body else { return nil }
        if let text = object["error_description"]?.stringValue { return clip(text) }
        if let text = object["detail"]?.stringValue { return clip(text) }
        if case .array(let problems)? = object["detail"] {
            let texts = problems.prefix(5).compactMap { problem -> String? in
                guard let message = problem.objectValue?["msg"]?.stringValue else { return nil }
                let location = problem.objectValue?["loc"]?.arrayValue?.compactMap { element -> String? in
                    element.stringValue ?? (element.doubleValue != nil ? String(decoding: element.serialized(), as: UTF8.self) : nil)
                }.filter { $0 != "body" && $0 != "query" && $0 != "path" && $0 != "header" }.joined(separator: ".")
                return location.map { $0.isEmpty ? message : "'\($0)' \(message)" } ?? message
            }
            if !texts.isEmpty { return clip(texts.joined(separator: "; ")) }
        }
        if let text = object["title"]?.stringValue { return clip(text) }
        if let text = object["message"]?.stringValue { return clip(text) }
        if let text = object["error"]?.stringValue { return clip(text) }
        return nil
    }

    /// An API's message, at most 500 characters, without control characters.
    private static func clip(_ text: String) -> String {
        let clean = String(String.UnicodeScalarView(text.unicodeScalars.map { $0.value < 0x20 || $0.value == 0x7F ? " " : $0 }))
        return clean.count > 500 ? String(clean.prefix(500)) + "…" : clean
    }
}
