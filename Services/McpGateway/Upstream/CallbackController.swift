import Foundation
import HTTPTypes
import Hummingbird
import JWTAuth
import Logging
import Resilience
import ServiceSupport

/// `GET /callback`: the upstream provider returns the browser here. The pending sign-in is taken (single use) and
/// checked against the browser's cookie; the code is exchanged with the PKCE verifier; the ID token is verified; then
/// the grant and a gateway authorization code are created and the browser goes back to the MCP client.
struct CallbackController {
    let address: GatewayAddress
    /// How long a grant lasts before its user signs in again (`GRANT_TTL`).
    let grantLifetime: TimeInterval
    let pendingSignIns: any PendingSignInStore
    let codes: any AuthorizationCodeStore
    let upstream: UpstreamProvider
    let cipher: TokenCipher
    let cookies: CookieSigner
    let pages: PageRenderer
    let clock: any WallClock
    let random: any RandomSource
    let audit: AuditLog

    func addRoutes(to router: some RouterMethods<GatewayRequestContext>) {
        router.get("callback", use: callback)
    }

    @Sendable func callback(_ request: Request, context: GatewayRequestContext) async throws -> Response {
        let clearCookie: HTTPFields = [.setCookie: cookies.clearCookie(UpstreamSignIn.cookieName)]
        let query: FormParameters
        do { query = try request.queryParameters() } catch {
            return pages.errorPage(
                status: .badRequest, heading: "Sign-in not accepted",
                message: "The identity provider's response is malformed: \(error.message).",
                requestID: context.requestID, headers: clearCookie)
        }
        guard let state = try? query.single("state"),
            let pending = try await pendingSignIns.takePending(keyDigest: SecretDigest.hex(state), now: clock.now)
        else {
            return pages.errorPage(
                status: .badRequest, heading: "This sign-in has expired",
                message: "It is unknown, older than ten minutes, or was already completed.",
                requestID: context.requestID, headers: clearCookie)
        }
        guard let binding = cookies.cookie(UpstreamSignIn.cookieName, in: request),
            SecretDigest.matches(binding, digest: pending.bindingDigest)
        else {
            context.logger.warning(
                "Callback from a browser that did not start the sign-in",
                metadata: ["oauth.client_id": "\(pending.request.clientID)"])
            return pages.errorPage(
                status: .forbidden, heading: "Sign-in not accepted",
                message: "This sign-in was started in another browser. Start it again from your application.",
                requestID: context.requestID, headers: clearCookie)
        }
        let back = { (error: String, description: String) in
            (
                "Return to the application",
                ClientRedirect.error(pending.request, error, description, issuer: address.issuer)
            )
        }
        if let error = try? query.single("error") {
            let description = (try? query.single("error_description")) ?? error
            return pages.errorPage(
                status: .ok, heading: "\(upstream.configuration.displayName) did not sign you in",
                message: "The identity provider answered: \(description)",
                back: back(error == "access_denied" ? "access_denied" : "server_error", description),
                requestID: context.requestID, headers: clearCookie)
        }
        if let iss = try? query.single("iss"), iss != upstream.configuration.issuer {
            return pages.errorPage(
                status: .badRequest, heading: "Sign-in not accepted",
                message: "The response came from another identity provider (iss \(iss)).",
                back: back("server_error", "Issuer mismatch in the identity provider's response"),
                requestID: context.requestID, headers: clearCookie)
        }
        guard let code = try? query.single("code") else {
            return pages.errorPage(
                status: .badRequest, heading: "Sign-in not accepted",
                message: "The identity provider's response has no code.", requestID: context.requestID,
                headers: clearCookie)
        }
        do {
            let (grantCode, grant) = try await completeSignIn(pending: pending, upstreamCode: code, state: state)
            let audit = audit
            audit.record(
                .signIn, user: grant.user?.subject, client: grant.clientID, grant: grant.id,
                detail: ["oauth.scope": "\(grant.scope)"], requestID: context.requestID)
            audit.record(.codeIssued, user: grant.user?.subject, client: grant.clientID, grant: grant.id)
            var response = HTMLPage.redirect(
                to: ClientRedirect.success(pending.request, code: grantCode, issuer: address.issuer))
            response.headers.append(contentsOf: clearCookie)
            return response
        } catch UpstreamError.invalidGrant(let reason) {
            // The provider refused this code (expired, already used, or issued for another client): the user's
            // sign-in failed, not the gateway, and starting again fixes it.
            context.logger.warning(
                "The identity provider refused the authorization code",
                metadata: ["oauth.client_id": "\(pending.request.clientID)", "error": "\(reason)"])
            return pages.errorPage(
                status: .badRequest, heading: "Sign-in with \(upstream.configuration.displayName) did not complete",
                message: "The identity provider did not accept this sign-in; it may have expired or been used already."
                    + " Start again from your application. (Request id \(context.requestID).)",
                back: back("access_denied", "The identity provider did not accept the sign-in"), headers: clearCookie)
        } catch let error as UpstreamError {
            context.logger.error(
                "Upstream sign-in failed",
                metadata: ["oauth.client_id": "\(pending.request.clientID)", "error": "\(error)"])
            return pages.errorPage(
                status: .badGateway, heading: "Sign-in with \(upstream.configuration.displayName) failed",
                message: "The gateway could not complete the sign-in with the identity provider. Try again in a moment;"
                    + " if it keeps failing, give the operator the request id \(context.requestID).",
                back: back("server_error", "The identity provider's response could not be used"), headers: clearCookie)
        } catch let error as DependencyUnavailable {
            // The database did not answer: a 503 page with Retry-After (BrowserErrorPages).
            throw error
        } catch {
            // Storage or encryption failed: the gateway's fault, answered with a page the user can act on and the
            // detail in the log only.
            context.logger.error(
                "Completing the sign-in failed",
                metadata: ["oauth.client_id": "\(pending.request.clientID)", "error": "\(error)"])
            return pages.errorPage(
                status: .serviceUnavailable, heading: "The sign-in could not be completed",
                message: "The gateway could not store your sign-in. Start again from your application in a moment;"
                    + " if it keeps failing, give the operator the request id \(context.requestID).",
                back: back("temporarily_unavailable", "The gateway could not complete the sign-in"),
                headers: clearCookie)
        }
    }

    /// Exchanges the code, verifies the ID token, stores the grant and returns a gateway authorization code.
    private func completeSignIn(pending: PendingAuthorization, upstreamCode: String, state: String) async throws
        -> (code: String, grant: Grant)
    {
        let verifier = try cipher.open(pending.upstreamVerifier, context: "pkce:" + SecretDigest.hex(state))
        let tokens = try await upstream.exchange(code: upstreamCode, verifier: verifier)
        let user: UserProfile
        if upstream.configuration.github != nil {
            // Not OpenID Connect: the user is whom GitHub's API says the token belongs to.
            user = try await upstream.githubUser(accessToken: tokens.accessToken)
        } else {
            guard let idToken = tokens.idToken else {
                throw UpstreamError.protocolViolation(
                    "the token response has no id_token (is 'openid' in OIDC_SCOPE / AUTH0_SCOPE?)")
            }
            user = await upstream.completeProfile(
                try await upstream.validateIDToken(idToken, nonce: pending.upstreamNonce),
                accessToken: tokens.accessToken)
        }

        // The gateway token carries what the client asked for and the provider actually granted (or, for providers
        // that only sign users in, what GRANTED_SCOPES allows every user).
        let upstreamScope: ScopeSet
        if let granted = upstream.configuration.grantedScopes {
            upstreamScope = granted
        } else if let granted = tokens.scope {
            upstreamScope = granted
        } else if let granted = await upstream.scopes(ofAccessToken: tokens.accessToken) {
            upstreamScope = granted
        } else {
            upstreamScope = pending.request.scope  // RFC 6749 §5.1: no scope in the response means as requested
        }
        let requested = pending.request.scope
        let scope = requested.intersection(upstreamScope.union(["offline_access"]))

        let now = clock.now
        let grantID = GatewayTokenFormat.newGrantID(from: random)
        let code = GatewayTokenFormat.newAuthorizationCode(from: random)
        let grant = Grant(
            id: grantID, clientID: pending.request.clientID, user: user, scope: scope,
            resource: address.resource,
            upstream: try UpstreamTokenVault(cipher: cipher).seal(tokens, grantID: grantID, now: now, previous: nil),
            createdAt: now, expiresAt: now.addingTimeInterval(grantLifetime), revokedAt: nil,
            currentRefreshDigest: nil, previousRefreshDigest: nil,
            // A key named at /authorize (dpop_jkt): the code, and the refresh tokens, are bound to it from the start.
            dpopJKT: pending.request.dpopJKT)
        try await codes.insert(
            grant: grant,
            code: AuthorizationCodeRecord(
                digest: SecretDigest.hex(code), grantID: grantID, clientID: pending.request.clientID,
                redirectURI: pending.request.redirectURI, redirectURIRequired: pending.request.redirectURIIncluded,
                codeChallenge: pending.request.codeChallenge,
                resource: pending.request.resource,
                expiresAt: now.addingTimeInterval(AuthorizationCodeRecord.lifetime), redeemedAt: nil))
        return (code, grant)
    }
}
