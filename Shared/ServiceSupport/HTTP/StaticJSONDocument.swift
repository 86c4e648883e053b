import HTTPTypes
import Hummingbird
import JSON
import NIOCore

/// A JSON document made once at start-up and served as is, cacheable: discovery documents and key sets.
public struct StaticJSONDocument: Sendable {
    private let body: ByteBuffer
    private let headers: HTTPFields

    /// `value`, written once (sorted members, `/` unescaped), served with `Cache-Control: public, max-age=<maxAge>`
    /// and `headers`.
    public init(_ value: JSONValue, maxAge: Int = 3600, headers: HTTPFields = [:]) {
        body = ByteBuffer(bytes: value.serialized())
        var all: HTTPFields = [.contentType: "application/json; charset=utf-8", .cacheControl: "public, max-age=\(maxAge)"]
        all.append(contentsOf: headers)
        self.headers = all
    }

    public var response: Response {
        Response(status: .ok, headers: headers, body: .init(byteBuffer: body))
    }
}
