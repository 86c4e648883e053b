import HTTPTypes
import Hummingbird
import JWTAuth

extension ErrorResponse {
    /// The HTTP form of a bearer-token failure: the RFC 6750 status and `WWW-Authenticate` challenge, and the same
    /// code and message as JSON. A 503 (the issuer's keys are unavailable) carries `Retry-After` instead.
    public init(
        _ error: BearerAuthError, realm: String? = nil, scope: ScopeSet? = nil, resourceMetadata: String? = nil
    ) {
        var headers: HTTPFields = [:]
        let status = HTTPResponse.Status(code: error.httpStatus)
        if error.httpStatus == 503 {
            headers[.retryAfter] = "5"
            self.init(status: status, code: "temporarily_unavailable", message: error.message, headers: headers)
            return
        }
        headers[.wwwAuthenticate] = error.challenge(realm: realm, scope: scope, resourceMetadata: resourceMetadata)
        self.init(
            status: status, code: error.code?.rawValue ?? "unauthorized", message: error.message,
            headers: headers)
    }
}

extension Request {
    /// The bearer token of the `Authorization` header (RFC 6750 §2.1).
    public func bearerToken() throws(BearerAuthError) -> String {
        try BearerCredentials.token(fromAuthorizationHeaders: headers[values: .authorization])
    }
}
