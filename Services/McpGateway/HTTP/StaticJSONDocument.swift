import Foundation
import Hummingbird
import JSON
import JWTAuth
import NIOCore

/// A JSON document made once at start-up and served as is, cacheable for an hour: the discovery documents.
struct StaticJSONDocument: Sendable {
    let body: ByteBuffer

    init(_ value: JSONValue) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        body = ByteBuffer(bytes: (try? encoder.encode(value)) ?? Data())
    }

    var response: Response {
        Response(
            status: .ok,
            headers: [.contentType: "application/json; charset=utf-8", .cacheControl: "public, max-age=3600"],
            body: .init(byteBuffer: body))
    }
}
