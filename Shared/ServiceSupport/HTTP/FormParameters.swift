import Foundation
import Hummingbird
import JSON
import NIOCore

/// `application/x-www-form-urlencoded` parameters, kept in order and with repeats, so that an OAuth endpoint can refuse
/// a parameter sent twice (RFC 6749 §3.1: "Request and response parameters MUST NOT be included more than once").
public struct FormParameters: Sendable {
    /// The name–value pairs, in order.
    public let pairs: [(name: String, value: String)]

    /// Parses a form body or query string.
    ///
    /// - Throws: `invalid_request` when the percent-encoding is broken or a name or value holds a control character
    ///   (U+0000–U+001F, U+007F–U+009F). No OAuth parameter may contain one (RFC 6749 Appendix A: identifiers,
    ///   `state`, codes and tokens are visible ASCII), and a NUL that reaches a C string API truncates the value, so
    ///   `client_id=C1%00x` could pass for `C1`.
    public init(encoded text: String) throws(ErrorResponse) {
        var pairs: [(String, String)] = []
        for item in text.split(separator: "&", omittingEmptySubsequences: true) {
            let parts = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard let name = Self.decode(parts[0]), let value = Self.decode(parts.count > 1 ? parts[1] : "") else {
                throw .invalidRequest("The parameters are not valid application/x-www-form-urlencoded")
            }
            guard !Self.hasControlCharacter(name) else {
                throw .invalidRequest("A parameter name contains a control character")
            }
            guard !Self.hasControlCharacter(value) else {
                throw .invalidRequest("The parameter '\(name.prefix(64))' contains a control character")
            }
            pairs.append((name, value))
        }
        self.pairs = pairs
    }

    /// Whether `text` holds a C0 or C1 control character or DEL.
    public static func hasControlCharacter(_ text: some StringProtocol) -> Bool {
        text.unicodeScalars.contains { $0.value < 0x20 || (0x7F...0x9F).contains($0.value) }
    }

    /// Creates parameters from pairs.
    public init(_ pairs: [(name: String, value: String)]) { self.pairs = pairs }

    /// The one value of `name`; `nil` when absent or empty (RFC 6749 §3.1: empty parameters are treated as
    /// omitted); an error when sent more than once.
    public func single(_ name: String) throws(ErrorResponse) -> String? {
        let values = pairs.filter { $0.name == name }.map(\.value)
        guard values.count <= 1 else { throw .badRequest("The parameter '\(name)' was sent more than once") }
        guard let value = values.first, !value.isEmpty else { return nil }
        return value
    }

    /// The value of `name`, or an `invalid_request` error naming it.
    public func required(_ name: String) throws(ErrorResponse) -> String {
        guard let value = try single(name) else { throw .badRequest("The parameter '\(name)' is missing") }
        return value
    }

    /// Whether `name` was sent at all.
    public func contains(_ name: String) -> Bool { pairs.contains { $0.name == name } }

    /// `application/x-www-form-urlencoded` decoding: `+` is a space, `%XX` a byte, and the bytes must be UTF-8; `nil`
    /// for a malformed escape or invalid UTF-8. Most values (tokens, ids) contain neither and are taken as they are.
    static func decode(_ part: Substring) -> String? {
        let utf8 = part.utf8
        guard utf8.contains(where: { $0 == UInt8(ascii: "+") || $0 == UInt8(ascii: "%") }) else { return String(part) }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(utf8.count)
        var index = utf8.startIndex
        func hex(_ byte: UInt8) -> UInt8? {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
            default: nil
            }
        }
        while index < utf8.endIndex {
            let byte = utf8[index]
            switch byte {
            case UInt8(ascii: "+"):
                bytes.append(UInt8(ascii: " "))
            case UInt8(ascii: "%"):
                let first = utf8.index(after: index)
                guard first < utf8.endIndex, case let second = utf8.index(after: first), second < utf8.endIndex,
                    let high = hex(utf8[first]), let low = hex(utf8[second])
                else { return nil }
                bytes.append(high << 4 | low)
                index = second
            default:
                bytes.append(byte)
            }
            index = utf8.index(after: index)
        }
        return bytes.withUnsafeBufferPointer(UTF8Validation.string)
    }
}

extension Request {
    /// The form parameters of the body; `413` when it exceeds `limit` bytes, else `400 invalid_request` unless the body
    /// is `application/x-www-form-urlencoded` and valid (RFC 6749 §3.2 and §5.2: a token endpoint answers a body of
    /// another type with `invalid_request`, not with an HTTP 415, which no OAuth client knows how to report).
    public func formParameters(limit: Int = 64 * 1024) async throws -> FormParameters {
        guard mediaTypeIs("application/x-www-form-urlencoded") else {
            throw ErrorResponse.invalidRequest("Send the parameters as an application/x-www-form-urlencoded body")
        }
        let body = try await collectBody(limit: limit)
        return try FormParameters(encoded: String(decoding: body.readableBytesView, as: UTF8.self))
    }

    /// The query string's parameters; `invalid_request` when it is not valid form encoding (see
    /// ``FormParameters/init(encoded:)``).
    public func queryParameters() throws(ErrorResponse) -> FormParameters {
        try FormParameters(encoded: uri.query ?? "")
    }

    /// The body, at most `limit` bytes (`413` beyond).
    public func collectBody(limit: Int) async throws -> ByteBuffer {
        do {
            return try await body.collect(upTo: limit)
        } catch is NIOTooManyBytesError {
            throw ErrorResponse.tooLarge(limit: limit)
        }
    }

    /// Whether the `Content-Type` is `mediaType` (parameters such as `charset` ignored, case-insensitive).
    public func mediaTypeIs(_ mediaType: String) -> Bool {
        headers[.contentType].map(MediaType.essence) == mediaType
    }
}

/// Media types as they appear in `Content-Type` and `Accept`.
public enum MediaType {
    /// The type without its parameters, lower-cased: `Application/JSON; charset=utf-8` is `application/json`.
    ///
    /// Every request with a body asks this, so ASCII (every media type there is) is read byte by byte; only a value
    /// with other characters goes through Foundation's trimming and Unicode lower-casing, as the whole value once did.
    public static func essence(_ value: some StringProtocol) -> String {
        let text = Substring(value)
        let utf8 = text.utf8
        let end = utf8.firstIndex(of: UInt8(ascii: ";")) ?? utf8.endIndex
        let type = utf8[utf8.startIndex..<end]
        guard type.allSatisfy({ $0 < 0x80 }) else {
            return String(text[text.startIndex..<end]).trimmingCharacters(in: .whitespaces).lowercased()
        }
        // RFC 9110's optional whitespace: spaces and tabs, the ASCII in `CharacterSet.whitespaces`.
        func isBlank(_ byte: UInt8) -> Bool { byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") }
        guard let first = type.firstIndex(where: { !isBlank($0) }), let last = type.lastIndex(where: { !isBlank($0) })
        else { return "" }
        return String(
            decoding: type[first...last].lazy.map { (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains($0) ? $0 | 0x20 : $0 },
            as: UTF8.self)
    }
}
