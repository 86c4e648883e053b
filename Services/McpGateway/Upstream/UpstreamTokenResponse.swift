import Foundation
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

/// Why talking to the upstream provider failed.
enum UpstreamError: Error, Equatable, CustomStringConvertible {
    /// The provider refused the grant (`invalid_grant`): the user must sign in again.
    case invalidGrant(String)
    /// The provider answered with another OAuth error.
    case rejected(code: String, description: String)
    /// The provider could not be reached, or answered something that is not OAuth.
    case unreachable(String)
    /// The provider did not answer within its deadline (`UPSTREAM_TIMEOUT`, `UPSTREAM_REFRESH_TIMEOUT`).
    case timedOut(String)
    /// The provider's answer breaks the protocol (no access token, an ID token that does not verify, …).
    case protocolViolation(String)

    var description: String {
        switch self {
        case .invalidGrant(let message): "the identity provider refused the grant: \(message)"
        case .rejected(let code, let message): "the identity provider answered \(code): \(message)"
        case .unreachable(let message): "the identity provider is unreachable: \(message)"
        case .timedOut(let message): "the identity provider did not answer in time: \(message)"
        case .protocolViolation(let message): "the identity provider's answer is invalid: \(message)"
        }
    }
}
