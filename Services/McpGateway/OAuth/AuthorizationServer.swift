import Foundation
import Hummingbird
import JWTAuth
import Logging
import ServiceLifecycle
import ServiceSupport

/// The gateway's own authorization server (`AUTH_MODE=gateway`): its parts, built once, its routes (registration,
/// authorization, the provider's callback, tokens, revocation, metadata), the start-up work it needs and its
/// background work.
struct AuthorizationServer: Sendable {
    let settings: AuthorizationServerSettings
    let address: GatewayAddress
    /// The scopes it offers: those of the tools.
    let scopes: GatewayScopes
    /// The stores, the access-token lookups going through ``AccessTokenCache``.
    let storage: GatewayStorage
    let clients: ClientDirectory
    let upstream: UpstreamProvider
    let cipher: TokenCipher
    let cookies: CookieSigner
    let upstreamTokens: UpstreamTokenService
    /// How clients authenticate at `/token` and `/revoke`.
    let clientAuthenticator: ClientAuthenticator
    /// The JWT-bearer grant of identity assertions, when trusted issuers are configured.
    let identityAssertions: JWTBearerGrant?
    /// DPoP proofs at `/token` and the MCP endpoints.
    let dpop: DPoPChecker
    let clock: any WallClock
    /// Where tokens, codes, ids and nonces come from.
    let random: any RandomSource
    /// Where security events are recorded.
    let audit: AuditLog
    /// How long the provider's reuse interval must be, and what the operator says it is (`UPSTREAM_REUSE_INTERVAL`).
    let reuseInterval: (required: Duration, stated: Duration?)

    /// Every route, those anyone can call without a token behind their rate limit.
    func addRoutes(to router: Router<GatewayRequestContext>, limits: GatewayRateLimits, pages: PageRenderer) {
        AuthorizationServerMetadataController(address: address, settings: settings, scopes: scopes).addRoutes(to: router)
        let signIn = UpstreamSignIn(
            pendingSignIns: storage.pendingSignIns, upstream: upstream, scopes: scopes, cipher: cipher, cookies: cookies,
            clock: clock, random: random)
        RegistrationController(clients: storage.clients, scopes: scopes, clock: clock, random: random).addRoutes(
            to: limits.limited(router, route: "/register", limits.register, pages: pages))
        AuthorizeController(
            address: address, settings: settings, scopes: scopes, clients: clients, signIn: signIn, cookies: cookies,
            cipher: cipher,
            pages: pages, clock: clock, random: random, audit: audit, usedTickets: storage.usedAssertions
        ).addRoutes(to: limits.limited(router, route: "/authorize", limits.authorize, pages: pages, browser: true))
        CallbackController(
            address: address, grantLifetime: settings.grantLifetime, pendingSignIns: storage.pendingSignIns,
            codes: storage.codes, upstream: upstream, cipher: cipher, cookies: cookies, pages: pages, clock: clock,
            random: random, audit: audit
        ).addRoutes(to: router)
        TokenController(
            address: address, settings: settings, codes: storage.codes, grants: storage.grants,
            refreshTokens: storage.refreshTokens, clients: clients, authenticator: clientAuthenticator,
            identityAssertions: identityAssertions, dpop: dpop, clock: clock, random: random, audit: audit
        ).addRoutes(to: limits.limited(router, route: "/token", limits.token, pages: pages))
        RevocationController(
            accessTokens: storage.accessTokens, refreshTokens: storage.refreshTokens, grants: storage.grants,
            authenticator: clientAuthenticator, clock: clock, audit: audit
        ).addRoutes(to: limits.limited(router, route: "/revoke", limits.revoke, pages: pages))
    }

    /// Before the server listens: every upstream token in the database must open with the configured keys (else the
    /// gateway refuses to start, naming the missing key); the provider's reuse interval is checked in the background.
    func startUp(logger: Logger) async throws {
        try await UpstreamTokenResealer.checkKeys(
            upstreamTokens: storage.upstreamTokens, cipher: cipher, now: clock.now)
        Task {
            await upstream.checkReuseInterval(
                required: reuseInterval.required, stated: reuseInterval.stated, logger: logger)
        }
    }

    /// Expired rows swept every minute, and registrations that never led to a grant after `UNUSED_CLIENT_TTL`.
    func services(logger: Logger) -> [any Service] {
        [
            ExpirySweeper(
                maintenance: storage.maintenance, clock: clock, interval: .seconds(60),
                unusedClientLifetime: settings.unusedClientLifetime, logger: logger)
        ]
    }
}
