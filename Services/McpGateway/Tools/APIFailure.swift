import JSON
import JWTAuth

/// Why a call to an API did not succeed, from the tool's point of view. Each case reads as a sentence the model can
/// pass on to the user (``message(api:)``); none is a protocol error.
enum APIFailure: Error, Equatable {
    /// The user's sign-in cannot be renewed (revoked, expired, or refused by the provider).
    case signInRequired
    /// The identity provider could not be reached to renew the sign-in (the detail is in the log).
    case providerUnavailable
    /// The gateway's database did not answer (the detail is in the log); the sign-in is kept.
    case storageUnavailable
    /// The gateway cannot decrypt the user's stored sign-in (a key configuration problem on the server).
    case credentialsUnreadable
    /// The gateway cannot sign the token it presents to the API (its signing keys are not loaded; the detail is in the
    /// log).
    case gatewayUnavailable
    /// The caller is a machine client acting for no user, and the API works with a user's data.
    case noUser
    /// The API refused the credential (401).
    case unauthorized(String)
    /// The API says the user may not do this (403).
    case forbidden(String)
    /// The API found nothing at the address (404), with what it said.
    case notFound(String)
    /// The API refused the request's content (another 4xx), with what it said.
    case rejected(String)
    /// Any other status.
    case failed(status: Int)
    /// A 2xx answer without the shape the API's document promises, or not JSON.
    case unexpectedBody(String)
    /// No answer at all: connection refused or reset (the detail is in the log).
    case unreachable
    /// No answer within `API_TIMEOUT`: the request may or may not have been carried out.
    case timedOut
    /// An answer larger than the gateway reads.
    case tooLarge(limit: Int)

    /// The sentence for the model and the user; `api` names the API as its document's title does ("the Todos API").
    func message(api: String) -> String {
        switch self {
        case .signInRequired: "Your sign-in has expired or was revoked. Reconnect to sign in again."
        case .providerUnavailable:
            "The identity provider could not be reached to renew your sign-in. Try again in a moment."
        case .storageUnavailable:
            "The gateway's database is not answering right now; your sign-in is kept. Try again in a moment."
        case .credentialsUnreadable:
            "The gateway is temporarily unavailable: it cannot read your stored sign-in (a configuration problem on the"
                + " server, which its operator can see in the log). Your sign-in is kept; try again later."
        case .gatewayUnavailable:
            "The gateway cannot sign requests to the \(api) right now (a problem on the server, which its operator can"
                + " see in the log). Try again in a moment."
        case .noUser:
            "This tool works with a user's data, and this connection is a machine client (client credentials) acting"
                + " for no user. Connect as a user (sign in, or an identity assertion) to use it."
        case .unauthorized(let reason): "The \(api) refused your sign-in: \(reason). Reconnect to sign in again."
        case .forbidden(let reason): "The \(api) says your account may not do this: \(reason)."
        case .notFound(let reason): "The \(api) found nothing there: \(reason)."
        case .rejected(let reason): "The \(api) refused the request: \(reason)."
        case .failed(let status): "The \(api) failed (HTTP \(status)). Try again later."
        case .unexpectedBody(let reason): "The \(api) answered with an unexpected body: \(reason)."
        case .unreachable: "The \(api) could not be reached. Try again in a moment."
        case .timedOut:
            "The \(api) did not answer in time. Try again in a moment; if you asked for a change, check whether it was"
                + " made before asking again."
        case .tooLarge(let limit):
            "The \(api) answered with more than the \(limit / 1024) KiB the gateway passes on. Ask for less (a filter or"
                + " a page, if the tool has one)."
        }
    }
}

extension ToolResult {
    /// The error result of a failure: its message, and whether the client must sign the user in again.
    init(_ failure: APIFailure, api: String) {
        self = .failure(failure.message(api: api))
        signInRequired = failure == .signInRequired
    }
}
