import Foundation
import HTTPTypes
import Hummingbird
import JWTAuth

/// An error that renders itself as JSON `{"error": …, "error_description": …}`, the shape of RFC 6749 §5.2, with
/// `Cache-Control: no-store`. Every error a service answers with goes through this type, so clients see one shape.
public struct ErrorResponse: HTTPResponseError, Sendable, CustomStringConvertible {
    /// The HTTP status.
    public var status: HTTPResponse.Status
    /// The machine-readable code, e.g. `invalid_request`, `not_found`.
    public var code: String
    /// A sentence for the developer reading the response.
    public var message: String
    /// Extra headers, e.g. `WWW-Authenticate`.
    public var headers: HTTPFields

    /// Creates an error response.
    public init(status: HTTPResponse.Status, code: String, message: String, headers: HTTPFields = [:]) {
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers
    }

    public var description: String { "\(status.code) \(code): \(message)" }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var headers = self.headers
        headers[.contentType] = "application/json; charset=utf-8"
        headers[.cacheControl] = "no-store"
        let body = try JSONEncoder().encode(
            Body(error: code, errorDescription: OAuthErrorText.safe(message)))
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }

    private struct Body: Encodable {
        let error: String
        let errorDescription: String

        enum CodingKeys: String, CodingKey {
            case error
            case errorDescription = "error_description"
        }
    }
}

extension ErrorResponse {
    /// 400 `invalid_request`.
    public static func badRequest(_ message: String) -> Self {
        Self(status: .badRequest, code: "invalid_request", message: message)
    }

    /// 404 `not_found`.
    public static func notFound(_ message: String = "No such resource") -> Self {
        Self(status: .notFound, code: "not_found", message: message)
    }

    /// 413 `request_too_large`.
    public static func tooLarge(limit: Int) -> Self {
        Self(status: .contentTooLarge, code: "request_too_large", message: "The request body exceeds \(limit) bytes")
    }

    /// 415 `unsupported_media_type`.
    public static func unsupportedMediaType(_ expected: String) -> Self {
        Self(status: .unsupportedMediaType, code: "unsupported_media_type", message: "Send the body as \(expected)")
    }

    /// The JSON form of one of Hummingbird's own errors (bad route, body too large, undecodable body).
    public init(_ error: HTTPError) {
        let code: String =
            switch error.status.code {
            case 400: "invalid_request"
            case 401: "unauthorized"
            case 403: "forbidden"
            case 404: "not_found"
            case 405: "method_not_allowed"
            case 413: "request_too_large"
            case 415: "unsupported_media_type"
            case 500...: "server_error"
            default: "error"
            }
        let message = error.body ?? error.status.reasonPhrase
        self.init(status: error.status, code: code, message: message, headers: error.headers)
    }
}
