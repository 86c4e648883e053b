import Foundation
import HTTPTypes
import Hummingbird
import JWTAuth
import Logging
import ServiceSupport

/// `/authorize`: `GET` validates the MCP client's request and shows the consent page (or goes straight to the
/// provider when this browser already approved the client); `POST` takes the consent decision.
struct AuthorizeController {
    static let consentCookie = "gw_consent"

    let address: GatewayAddress
    let settings: AuthorizationServerSettings
    let scopes: GatewayScopes
    let clients: ClientDirectory
    let signIn: UpstreamSignIn
    let cookies: CookieSigner
    let cipher: TokenCipher
    let pages: PageRenderer
    let clock: any WallClock
    let random: any RandomSource
    let audit: AuditLog
    /// Where a submitted consent form is recorded, on every instance, so that it is taken once.
    let usedTickets: any UsedAssertionStore

    var approvals: RememberedApprovals { RememberedApprovals(signer: cookies) }

    func addRoutes(to router: some RouterMethods<GatewayRequestContext>) {
        router.get("authorize", use: show)
        router.post("authorize", use: decide)
    }

    @Sendable func show(_ request: Request, context: GatewayRequestContext) async throws -> Response {
        let client: RegisteredClient
        let authorization: ClientAuthorizationRequest
        do {
            let query: FormParameters
            do { query = try request.queryParameters() } catch {
                throw AuthorizeFailure.page(title: "Invalid request", message: error.message)
            }
            (client, authorization) = try await AuthorizationRequestValidator(
                address: address, clients: clients, scopes: scopes
            )
            .validate(query)
        } catch let failure as AuthorizeFailure {
            if case .metadataDocument(let clientID, let error) = failure {
                context.logger.notice(
                    "A client metadata document was not accepted",
                    metadata: ["oauth.client_id": "\(clientID.prefix(300))", "error": "\(error.description)"])
                return pages.errorPage(
                    status: .badRequest, heading: "Application details not accepted",
                    message: "The application identifies itself by the URL \(clientID.prefix(300)), and the details"
                        + " published there could not be used. Its developer can ask the gateway's operator for the"
                        + " reason, quoting the request id \(context.requestID).")
            }
            return render(failure, requestID: context.requestID)
        }
        do {
            if approvals.covers(authorization, in: request, now: clock.now) {
                return try await signIn.start(authorization)
            }
            return try await consentPage(client: client, request: authorization)
        } catch let error as UpstreamError {
            return upstreamUnavailable(error, request: authorization, context: context)
        }
    }

    @Sendable func decide(_ request: Request, context: GatewayRequestContext) async throws -> Response {
        let form = try await request.formParameters(limit: 16 * 1024)
        let expired = pages.errorPage(
            status: .badRequest, heading: "This request has expired",
            message: "The approval form is older than ten minutes, was already used, or was opened in another browser.",
            requestID: context.requestID)
        guard let requestID = try form.single("request_id"),
            let pending = ConsentTicket.open(requestID, with: cipher, now: clock.now)
        else { return expired }
        guard let binding = cookies.cookie(Self.consentCookie, in: request),
            SecretDigest.matches(binding, digest: pending.bindingDigest),
            let csrf = try form.single("csrf_token"), SecretDigest.matches(csrf, digest: pending.csrfDigest)
        else {
            context.logger.warning(
                "Consent refused: CSRF token or browser binding mismatch",
                metadata: ["oauth.client_id": "\(pending.request.clientID)"])
            return pages.errorPage(
                status: .forbidden, heading: "Request not accepted",
                message: "This approval did not come from the page the gateway showed in this browser.",
                requestID: context.requestID)
        }
        // One form, one decision: the same ticket submitted again (twice at once, or replayed with its cookie) would
        // start another sign-in. Recorded on every instance, as long as the ticket could open, under what is inside
        // it (the digest of the form's random CSRF token), not its text: base64 has more than one spelling of the same
        // bytes.
        let firstUse = try await usedTickets.markUsed(
            digest: SecretDigest.hex("consent-ticket\u{0}" + pending.csrfDigest), expiresAt: pending.expiresAt,
            now: clock.now)
        guard firstUse else {
            context.logger.notice(
                "Consent refused: the form was already submitted", metadata: ["oauth.client_id": "\(pending.request.clientID)"])
            return expired
        }
        let clearConsent = cookies.clearCookie(Self.consentCookie)
        // Approve is the form's default button: a submission without a decision (Enter in the form, a script that
        // posts the form as it is) approves; only an explicit deny denies.
        switch try form.single("decision") {
        case "approve", nil:
            audit.record(
                .consent, client: pending.request.clientID,
                detail: ["consent.decision": "approve", "oauth.scope": "\(pending.request.scope)"],
                requestID: context.requestID)
            let remember = approvals.remembering(pending.request, in: request, now: clock.now)
            do {
                var response = try await signIn.start(pending.request, extraCookies: [clearConsent, remember])
                response.status = .seeOther  // RFC 9700 §4.12: after a POST, 303 so that the form is not re-sent
                return response
            } catch let error as UpstreamError {
                return upstreamUnavailable(error, request: pending.request, context: context)
            }
        case "deny":
            audit.record(
                .consent, client: pending.request.clientID, detail: ["consent.decision": "deny"],
                requestID: context.requestID)
            var response = HTMLPage.redirect(
                to: ClientRedirect.error(
                    pending.request, "access_denied", "The user denied access", issuer: address.issuer),
                status: .seeOther)
            response.headers.append(HTTPField(name: .setCookie, value: clearConsent))
            return response
        default:
            return pages.errorPage(
                status: .badRequest, heading: "Invalid request", message: "The decision must be approve or deny.",
                requestID: context.requestID)
        }
    }

    private func consentPage(client: RegisteredClient, request: ClientAuthorizationRequest) async throws -> Response {
        let binding = random.token()
        let csrf = random.token()
        let requestID = try ConsentTicket(
            request: request, bindingDigest: SecretDigest.hex(binding), csrfDigest: SecretDigest.hex(csrf),
            expiresAt: clock.now.addingTimeInterval(PendingAuthorization.lifetime)
        ).sealed(with: cipher)
        var page: [String: Any] = [
            "clientName": client.name ?? "An unnamed application",
            "redirectHost": URLComponents(string: request.redirectURI)?.host ?? request.redirectURI,
            "scopes": scopes.describe(request.scope).map { ["scope": $0.scope, "description": $0.description] },
            "identityProvider": settings.upstream.displayName,
            "action": address.publicURL + "/authorize", "requestID": requestID, "csrfToken": csrf,
        ]
        let redirectHost = URLComponents(string: request.redirectURI)?.host?.lowercased()
        if ClientMetadataDocumentURL.isCandidate(client.id), let host = URLComponents(string: client.id)?.host {
            // The one thing about such a client the gateway has verified: where its document is published.
            page["documentHost"] = host.lowercased()
            page["redirectElsewhere"] = redirectHost != host.lowercased()
        } else if let uri = client.uri, let host = URLComponents(string: uri)?.host {
            page["clientHost"] = host
        }
        if let logo = client.logoURI, logo.hasPrefix("https://") { page["logoURI"] = logo }
        let cookie = cookies.setCookie(
            Self.consentCookie, value: binding, maxAge: Int(PendingAuthorization.lifetime))
        return pages.page("consent", page, headers: [.setCookie: cookie])
    }

    /// A failure found before the redirect URI was trusted is a page, with the request id the user can quote.
    private func render(_ failure: AuthorizeFailure, requestID: String) -> Response {
        switch failure {
        case .page(let title, let message, let status):
            return pages.errorPage(status: status, heading: title, message: message, requestID: requestID)
        case .redirect(let request, let error, let description):
            return HTMLPage.redirect(
                to: ClientRedirect.error(request, error, description, issuer: address.issuer))
        case .metadataDocument:
            return pages.errorPage(
                status: .badRequest, heading: "Application details not accepted",
                message: "The details the application publishes could not be used.", requestID: requestID)
        }
    }

    private func upstreamUnavailable(
        _ error: UpstreamError, request: ClientAuthorizationRequest,
        context: GatewayRequestContext
    ) -> Response {
        context.logger.error("Cannot start the upstream sign-in", metadata: ["error": "\(error)"])
        return pages.errorPage(
            status: .badGateway, heading: "\(settings.upstream.displayName) is not reachable",
            message: "The gateway could not reach the identity provider to sign you in. Try again in a moment.",
            back: (
                "Return to the application",
                ClientRedirect.error(
                    request, "temporarily_unavailable", "The identity provider is unreachable",
                    issuer: address.issuer)
            ),
            requestID: context.requestID)
    }
}
