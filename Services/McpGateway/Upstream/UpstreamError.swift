import Foundation
import JWTAuth

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
