import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// JSON answers of OAuth endpoints: sorted keys, unescaped slashes, `Cache-Control: no-store` (RFC 6749 §5.1: token
/// responses must not be cached; nothing else these endpoints return should be either).
public enum JSONResponse {
    /// `value` encoded as the body of a response with `status`.
    public static func make(_ value: some Encodable, status: HTTPResponse.Status = .ok) throws -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return Response(
            status: status, headers: [.contentType: "application/json; charset=utf-8", .cacheControl: "no-store"],
            body: .init(byteBuffer: ByteBuffer(bytes: try encoder.encode(value))))
    }
}

/// A successful token response (RFC 6749 §5.1, OpenID Connect Core §3.1.3.3).
public struct TokenResponse: Encodable, Sendable {
    public let accessToken: String
    /// `Bearer`, or `N_A` for a token exchange that issues something other than an access token (RFC 8693 §2.2.1).
    public var tokenType = "Bearer"
    public let expiresIn: Int
    public let scope: String
    public var refreshToken: String?
    public var idToken: String?
    /// `issued_token_type` of an RFC 8693 token exchange response.
    public var issuedTokenType: String?

    /// Creates a token response.
    public init(accessToken: String, expiresIn: Int, scope: String, refreshToken: String? = nil, idToken: String? = nil)
    {
        self.accessToken = accessToken
        self.expiresIn = expiresIn
        self.scope = scope
        self.refreshToken = refreshToken
        self.idToken = idToken
    }

    enum CodingKeys: String, CodingKey {
        case accessToken = "access_token"
        case tokenType = "token_type"
        case expiresIn = "expires_in"
        case scope
        case refreshToken = "refresh_token"
        case idToken = "id_token"
        case issuedTokenType = "issued_token_type"
    }
}
