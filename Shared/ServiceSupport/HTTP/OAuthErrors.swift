import HTTPTypes

/// The error responses of RFC 6749 §5.2 (token endpoint) and RFC 7591 §3.2.2 (registration).
extension ErrorResponse {
    /// 400 `invalid_request`: a parameter is missing, repeated or malformed.
    public static func invalidRequest(_ message: String) -> Self {
        Self(status: .badRequest, code: "invalid_request", message: message)
    }

    /// 401 `invalid_client` with a `Basic` challenge: client authentication failed.
    public static func invalidClient(_ message: String, realm: String) -> Self {
        Self(
            status: .unauthorized, code: "invalid_client", message: message,
            headers: [.wwwAuthenticate: #"Basic realm="\#(realm)", charset="UTF-8""#])
    }

    /// 400 `invalid_grant`: the code or refresh token is invalid, expired, revoked or for another client.
    public static func invalidGrant(_ message: String) -> Self {
        Self(status: .badRequest, code: "invalid_grant", message: message)
    }

    /// 400 `unauthorized_client`: this client may not use this grant type.
    public static func unauthorizedClient(_ message: String) -> Self {
        Self(status: .badRequest, code: "unauthorized_client", message: message)
    }

    /// 400 `unsupported_grant_type`.
    public static func unsupportedGrantType(_ grantType: String) -> Self {
        Self(
            status: .badRequest, code: "unsupported_grant_type",
            message: "The grant type '\(grantType)' is not supported")
    }

    /// 400 `invalid_scope`.
    public static func invalidScope(_ message: String) -> Self {
        Self(status: .badRequest, code: "invalid_scope", message: message)
    }

    /// 400 `invalid_target` (RFC 8707): the `resource` is not one this server issues tokens for.
    public static func invalidTarget(_ message: String) -> Self {
        Self(status: .badRequest, code: "invalid_target", message: message)
    }

    /// 400 `invalid_redirect_uri` (RFC 7591).
    public static func invalidRedirectURI(_ message: String) -> Self {
        Self(status: .badRequest, code: "invalid_redirect_uri", message: message)
    }

    /// 400 `invalid_client_metadata` (RFC 7591).
    public static func invalidClientMetadata(_ message: String) -> Self {
        Self(status: .badRequest, code: "invalid_client_metadata", message: message)
    }
}
