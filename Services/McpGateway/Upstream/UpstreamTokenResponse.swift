import Foundation
import JSON
import JWTAuth

/// A token endpoint response of the upstream provider (RFC 6749 §5.1), or its error (§5.2).
struct UpstreamTokenResponse: Sendable {
    var accessToken: String
    var refreshToken: String?
    var idToken: String?
    var expiresIn: TimeInterval?
    var scope: ScopeSet?

    init(json: [String: JSONValue]) throws(UpstreamError) {
        guard let accessToken = json["access_token"]?.stringValue, !accessToken.isEmpty else {
            throw .protocolViolation("the token response has no access_token")
        }
        self.accessToken = accessToken
        self.refreshToken = json["refresh_token"]?.stringValue
        self.idToken = json["id_token"]?.stringValue
        self.expiresIn = json["expires_in"]?.doubleValue
        self.scope = json["scope"]?.stringValue.map(ScopeSet.init(spaceSeparated:))
    }
}
