import Foundation
import Hummingbird
import NIOCore

/// `application/x-www-form-urlencoded` parameters, kept in order and with repeats, so that an OAuth endpoint can refuse
/// a parameter sent twice (RFC 6749 §3.1: "Request and response parameters MUST NOT be included more than once").
public struct FormParameters: Sendable {
    /// The name–value pairs, in order.
    public let pairs: [(name: String, value: String)]

    /// Parses a form body or query string; `nil` when the percent-encoding is broken.
    public init?(encoded text: String) {
        var pairs: [(String, String)] = []
        for item in text.split(separator: "&", omittingEmptySubsequences: true) {
            let parts = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard let name = Self.decode(parts[0]), let value = Self.decode(parts.count > 1 ? parts[1] : "") else {
                return nil
            }
            pairs.append((name, value))
        }
        self.pairs = pairs
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

    private static func decode(_ part: Substring) -> String? {
        part.replacingOccurrences(of: "+", with: " ").removingPercentEncoding
    }
}

extension Request {
    /// The form parameters of the body; `415` unless the body is `application/x-www-form-urlencoded`, `413` when it
    /// exceeds `limit` bytes, `400` when it is not valid form encoding.
    public func formParameters(limit: Int = 64 * 1024) async throws -> FormParameters {
        guard mediaTypeIs("application/x-www-form-urlencoded") else {
            throw ErrorResponse.unsupportedMediaType("application/x-www-form-urlencoded")
        }
        let text = String(buffer: try await collectBody(limit: limit))
        guard let parameters = FormParameters(encoded: text) else {
            throw ErrorResponse.badRequest("The form body is not valid application/x-www-form-urlencoded")
        }
        return parameters
    }

    /// The query string's parameters.
    public var queryParameters: FormParameters {
        FormParameters(encoded: uri.query ?? "") ?? FormParameters([])
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
    public static func essence(_ value: some StringProtocol) -> String {
        (value.split(separator: ";", maxSplits: 1).first ?? "").trimmingCharacters(in: .whitespaces).lowercased()
    }
}
