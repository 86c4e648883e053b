import HTTPTypes
import Hummingbird

/// A W3C Trace Context (`traceparent`, and `tracestate` when present), as MCP clients send it in a request's `_meta`
/// and as HTTP services pass it on in headers, so that one trace follows a tool call from the client through the
/// gateway to TodosAPI.
///
/// Only well-formed values are kept (version `00` layout, lower-case hex, neither id all zeros); anything else is
/// ignored, as the W3C recommendation asks of a receiver.
public struct TraceContext: Sendable, Equatable {
    /// `00-<trace-id>-<parent-id>-<flags>`.
    public let traceparent: String
    /// Vendor-specific entries, passed on unchanged (at most 512 characters, the recommendation's limit).
    public let tracestate: String?

    /// The trace id: 32 hexadecimal digits.
    public var traceID: Substring { traceparent.dropFirst(3).prefix(32) }

    public init?(traceparent: String, tracestate: String? = nil) {
        guard Self.isValid(traceparent: traceparent) else { return nil }
        self.traceparent = traceparent
        if let tracestate, tracestate.utf8.count <= 512, tracestate.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) {
            self.tracestate = tracestate
        } else {
            self.tracestate = nil
        }
    }

    /// `version "-" trace-id "-" parent-id "-" trace-flags`, 55 characters for version 00. Later versions may append
    /// fields after a dash; their first 55 characters keep this layout.
    static func isValid(traceparent value: String) -> Bool {
        let bytes = Array(value.utf8)
        guard bytes.count == 55 || (bytes.count > 55 && bytes[55] == UInt8(ascii: "-")) else { return false }
        guard bytes[2] == UInt8(ascii: "-"), bytes[35] == UInt8(ascii: "-"), bytes[52] == UInt8(ascii: "-") else {
            return false
        }
        func hex(_ range: Range<Int>) -> Bool {
            bytes[range].allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }
        }
        func zero(_ range: Range<Int>) -> Bool { bytes[range].allSatisfy { $0 == UInt8(ascii: "0") } }
        guard hex(0..<2), hex(3..<35), hex(36..<52), hex(53..<55) else { return false }
        // Version ff is invalid; version 00 has exactly four fields.
        if bytes[0] == UInt8(ascii: "f") && bytes[1] == UInt8(ascii: "f") { return false }
        if bytes[0] == UInt8(ascii: "0") && bytes[1] == UInt8(ascii: "0") && bytes.count != 55 { return false }
        return !zero(3..<35) && !zero(36..<52)
    }
}

extension TraceContext {
    /// The trace context of an HTTP request's `traceparent` and `tracestate` headers, if well formed.
    public init?(_ request: Request) {
        guard let parent = request.headers[.traceparent] else { return nil }
        self.init(traceparent: parent, tracestate: request.headers[.tracestate])
    }
}

extension HTTPField.Name {
    /// W3C Trace Context.
    public static let traceparent = Self("traceparent")!
    public static let tracestate = Self("tracestate")!
}
