import Logging

/// One line per security event, at `notice` (written at once, never buffered), from the logger `McpGateway.audit`:
/// `audit.event` names the event, with the user, client and grant ids it concerns. Never a token, code or secret.
///
/// Events: `consent` (approved or denied), `sign_in` (a user signed in upstream and a grant began), `code_issued`,
/// `code_replayed`, `refresh_token_reused`, `token_revoked` (by the client at `/revoke`), `grant_revoked` (by an
/// operator), `grant_ended_by_provider` (the provider refused a refresh).
struct AuditLog: Sendable {
    enum Event: String {
        case consent
        case signIn = "sign_in"
        case codeIssued = "code_issued"
        case codeReplayed = "code_replayed"
        case refreshTokenReused = "refresh_token_reused"
        case tokenRevoked = "token_revoked"
        case grantRevoked = "grant_revoked"
        case grantEndedByProvider = "grant_ended_by_provider"
        case toolDenied = "tool_denied"
        /// A token issued without a sign-in: to a machine client, or for an enterprise's identity assertion.
        case tokenIssuedWithoutSignIn = "token_issued_without_sign_in"
    }

    let logger: Logger

    /// Writes to `logger`, by default the logger `McpGateway.audit`. One is made where the gateway is composed and
    /// handed to whoever records events; a test hands its own and reads what was recorded.
    init(logger: Logger = Logger(label: "McpGateway.audit")) {
        self.logger = logger
    }

    func record(
        _ event: Event, user: String? = nil, client: String? = nil, grant: String? = nil,
        detail: Logger.Metadata = [:], requestID: String? = nil
    ) {
        var metadata: Logger.Metadata = ["audit.event": .string(event.rawValue)]
        if let user { metadata["user.id"] = .string(user) }
        if let client { metadata["oauth.client_id"] = .string(client) }
        if let grant { metadata["oauth.grant_id"] = .string(grant) }
        if let requestID { metadata["hb.request.id"] = .string(requestID) }
        metadata.merge(detail) { _, new in new }
        logger.notice("audit \(event.rawValue)", metadata: metadata)
    }
}
