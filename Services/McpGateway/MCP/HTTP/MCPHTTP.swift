import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import ServiceLifecycle
import ServiceSupport

/// The HTTP side of MCP messages: the headers MCP defines, and responses carrying JSON-RPC messages.
enum MCPHTTP {
    static let sessionID = HTTPField.Name("Mcp-Session-Id")!
    static let protocolVersion = HTTPField.Name("MCP-Protocol-Version")!
    static let method = HTTPField.Name("Mcp-Method")!
    static let name = HTTPField.Name("Mcp-Name")!
    static let accelBuffering = HTTPField.Name("X-Accel-Buffering")!

    /// A JSON-RPC message (or batch) as `application/json`.
    static func json(_ body: [UInt8], status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) -> Response {
        var headers = headers
        headers[.contentType] = "application/json"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }

    /// A JSON-RPC message as a one-event stream, for a client whose `Accept` allows `text/event-stream` only.
    static func singleEvent(_ body: [UInt8], headers: HTTPFields = [:]) -> Response {
        var headers = headers
        headers.append(contentsOf: streamHeaders)
        return Response(
            status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: EventStream.message(body))))
    }

    /// The answer to a request: JSON when the client accepts it, else one event.
    static func reply(
        _ body: [UInt8], accept: AcceptHeader, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]
    ) -> Response {
        accept.json || status != .ok
            ? json(body, status: status, headers: headers) : singleEvent(body, headers: headers)
    }

    /// A JSON-RPC error with its HTTP status.
    static func error(_ error: JSONRPCError, status: HTTPResponse.Status, headers: HTTPFields = [:]) -> Response {
        json(JSONRPCResponse.error(error), status: status, headers: headers)
    }

    /// `202 Accepted`, no body: the answer to a notification or a client's response.
    static func accepted(headers: HTTPFields = [:]) -> Response {
        Response(status: .accepted, headers: headers)
    }

    /// The headers of an event stream; `X-Accel-Buffering: no` keeps nginx from holding events back.
    static let streamHeaders: HTTPFields = [
        .contentType: "text/event-stream", .cacheControl: "no-cache, no-transform", accelBuffering: "no",
    ]

    /// The HTTP status of a JSON-RPC error. 2026-07-28 gives errors their own statuses (an unknown method is a 404,
    /// a malformed request a 400); in sessions (2025 revisions) an error of the method is an ordinary 200 response.
    static func status(of error: JSONRPCError, stateless: Bool) -> HTTPResponse.Status {
        switch error.code {
        case JSONRPCError.parseErrorCode, JSONRPCError.invalidRequestCode: .badRequest
        case JSONRPCError.headerMismatchCode, JSONRPCError.unsupportedProtocolVersionCode: .badRequest
        case JSONRPCError.methodNotFoundCode: stateless ? .notFound : .ok
        case JSONRPCError.invalidParamsCode: stateless ? .badRequest : .ok
        case JSONRPCError.busyCode: .tooManyRequests
        case JSONRPCError.signInRequiredCode: .unauthorized
        default: .ok
        }
    }

    /// A body whose `Content-Length` already exceeds `limit` is refused before a byte of it is read.
    static func declaredTooLarge(_ request: Request, limit: Int) -> Refusal? {
        guard let length = request.headers[.contentLength], let bytes = Int(length), bytes > limit else {
            if let length = request.headers[.contentLength], Int(length) == nil {
                return Refusal(.invalidRequest("Content-Length is not a number"), status: .badRequest)
            }
            return nil
        }
        return Refusal(
            .invalidRequest("The request body exceeds \(limit) bytes (MCP_MAX_REQUEST_BYTES)"), status: .contentTooLarge
        )
    }

    /// Reads a POSTed body of at most `limit` bytes, checking its media type.
    static func body(of request: Request, limit: Int, connection: any Channel) async throws(Refusal) -> ByteBuffer {
        guard request.mediaTypeIs("application/json") else {
            throw Refusal(
                .invalidRequest("Send JSON-RPC messages as Content-Type: application/json"),
                status: .unsupportedMediaType)
        }
        do {
            // A client that never finishes its body must not hold up a graceful shutdown: its connection is closed.
            // (A handler, not `cancelWhenGracefulShutdown`, whose task group would cost every request a few tasks.)
            return try await withGracefulShutdownHandler {
                try await request.collectBody(limit: limit)
            } onGracefulShutdown: {
                connection.close(promise: nil)
            }
        } catch let error as ErrorResponse where error.status == .contentTooLarge {
            throw Refusal(
                .invalidRequest("The request body exceeds \(limit) bytes (MCP_MAX_REQUEST_BYTES)"),
                status: .contentTooLarge)
        } catch {
            throw Refusal(.invalidRequest("The request body could not be read"), status: .badRequest)
        }
    }
}

/// A request refused before it reached a method: the JSON-RPC error and the HTTP status to answer with.
struct Refusal: Error {
    var error: JSONRPCError
    var status: HTTPResponse.Status
    var headers: HTTPFields = [:]

    init(_ error: JSONRPCError, status: HTTPResponse.Status, headers: HTTPFields = [:]) {
        self.error = error
        self.status = status
        self.headers = headers
    }

    var response: Response { MCPHTTP.error(error, status: status, headers: headers) }
}

/// Which of the two media types MCP responses use a request's `Accept` header allows. No header allows both; a range
/// with `q=0` allows nothing.
struct AcceptHeader: Sendable {
    let json: Bool
    let eventStream: Bool

    init(_ request: Request) {
        guard let value = request.headers[.accept] else {
            (json, eventStream) = (true, true)
            return
        }
        json = Self.allows(value, "application/json")
        eventStream = Self.allows(value, "text/event-stream")
    }

    /// Whether `accept` allows `type`: by name, `type/*` or `*/*`, unless with `q=0` ("not acceptable"). Media types
    /// compare without regard to case. Reads the header's bytes in place: it is parsed on every MCP request.
    static func allows(_ accept: String, _ type: String) -> Bool {
        let wanted = Array(type.utf8)
        guard let slash = wanted.firstIndex(of: UInt8(ascii: "/")) else { return false }
        let family = wanted[...slash] + Array("*".utf8)
        return accept.utf8.split(separator: UInt8(ascii: ",")).contains { range in
            var fields = range.split(separator: UInt8(ascii: ";"), omittingEmptySubsequences: false)[...]
            guard let name = fields.popFirst().map(trimmed) else { return false }
            guard sameIgnoringCase(name, wanted) || sameIgnoringCase(name, family) || name.elementsEqual("*/*".utf8)
            else { return false }
            return !fields.contains { isZeroQuality(trimmed($0)) }
        }
    }

    private static func trimmed(_ bytes: Substring.UTF8View.SubSequence) -> Substring.UTF8View.SubSequence {
        var bytes = bytes
        while let first = bytes.first, first == 0x20 || first == 0x09 { bytes.removeFirst() }
        while let last = bytes.last, last == 0x20 || last == 0x09 { bytes.removeLast() }
        return bytes
    }

    private static func sameIgnoringCase(_ bytes: Substring.UTF8View.SubSequence, _ other: some Collection<UInt8>)
        -> Bool
    {
        bytes.count == other.count && zip(bytes, other).allSatisfy { ($0 | 0x20) == ($1 | 0x20) }
    }

    /// `q=0`, `q=0.0`, `Q = 0.000`: a weight of zero.
    private static func isZeroQuality(_ parameter: Substring.UTF8View.SubSequence) -> Bool {
        guard let first = parameter.first, first | 0x20 == UInt8(ascii: "q") else { return false }
        let value = trimmed(parameter.dropFirst())
        guard value.first == UInt8(ascii: "=") else { return false }
        return (Double(String(decoding: trimmed(value.dropFirst()), as: UTF8.self)) ?? 1) == 0
    }
}
