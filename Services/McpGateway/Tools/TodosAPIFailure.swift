import JSON
import JWTAuth

/// Why a call to TodosAPI did not succeed, from the tool's point of view. Each case reads as a sentence the model can
/// pass on to the user (``message``); none is a protocol error.
enum TodosAPIFailure: Error, Equatable {
    /// The user's sign-in cannot be renewed (revoked, expired, or refused by the provider).
    case signInRequired
    /// The identity provider could not be reached to renew the sign-in (the detail is in the log).
    case providerUnavailable
    /// The gateway's database did not answer (the detail is in the log); the sign-in is kept.
    case storageUnavailable
    /// The gateway cannot decrypt the user's stored sign-in (a key configuration problem on the server).
    case credentialsUnreadable
    /// The gateway cannot sign the token it presents to TodosAPI (its signing keys are not loaded; the detail is in the
    /// log).
    case gatewayUnavailable
    /// The caller is a machine client acting for no user, and the API works with a user's data.
    case noUser
    /// TodosAPI refused the credential (401).
    case unauthorized(String)
    /// TodosAPI says the user may not do this (403).
    case forbidden(String)
    /// No such todo for this user (404).
    case notFound
    /// TodosAPI refused the request's content (400, 413, 415, 422).
    case rejected(String)
    /// Any other status.
    case failed(status: Int)
    /// A 2xx answer without the shape the API promises.
    case unexpectedBody
    /// No answer at all: connection refused or reset (the detail is in the log).
    case unreachable
    /// No answer within `API_TIMEOUT`: the request may or may not have been carried out.
    case timedOut

    var message: String {
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
            "The gateway cannot sign requests to the Todos API right now (a problem on the server, which its operator"
                + " can see in the log). Try again in a moment."
        case .noUser:
            "This tool works with a user's todos, and this connection is a machine client (client credentials) acting"
                + " for no user. Connect as a user (sign in, or an identity assertion) to use it."
        case .unauthorized(let reason): "The Todos API refused your sign-in: \(reason). Reconnect to sign in again."
        case .forbidden(let reason): "The Todos API says your account may not do this: \(reason)."
        case .notFound: "No such todo: it does not exist or belongs to someone else."
        case .rejected(let reason): "The Todos API refused the request: \(reason)."
        case .failed(let status): "The Todos API failed (HTTP \(status)). Try again later."
        case .unexpectedBody: "The Todos API answered with an unexpected body."
        case .unreachable: "The Todos API could not be reached. Try again in a moment."
        case .timedOut:
            "The Todos API did not answer in time. Try again in a moment; if you asked for a change, check whether it"
                + " was made before asking again."
        }
    }
}

extension ToolResult {
    /// The tool result of an API outcome: the structured content `success` makes of the payload, or the failure's
    /// message as an error result.
    init<Payload>(_ outcome: Result<Payload, TodosAPIFailure>, success: (Payload) -> JSONValue) {
        switch outcome {
        case .success(let payload): self = .success(success(payload))
        case .failure(let failure):
            self = .failure(failure.message)
            signInRequired = failure == .signInRequired
        }
    }
}
