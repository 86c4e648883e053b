import Foundation
import JWTAuth
import Logging
import Resilience
import ServiceSupport
import Synchronization

/// `DOWNSTREAM_TOKENS=exchange`: the provider exchanges the user's upstream access token for one of TodosAPI's
/// audience with the one scope a call needs (RFC 8693), as Keycloak's and Okta's token exchange offer it (Auth0's
/// custom token exchange expects a subject token type of its own, so is not this). Exchanged tokens are kept per
/// grant and scope until a minute before they expire; concurrent calls that need the same one wait for one exchange
/// (``SingleFlight``), each `UPSTREAM_TIMEOUT` at most.
final class TokenExchanges: Sendable {
    let provider: UpstreamProvider
    /// Where a grant whose token the provider refuses is ended, as a refused refresh ends it.
    let grants: any GrantStore
    let audience: String
    let clock: any WallClock
    let logger: Logger
    /// Where a grant the provider ended is recorded.
    let audit: AuditLog
    private let cache = Mutex<[CacheKey: Exchanged]>([:])
    private let exchanges = SingleFlight<CacheKey, String>()
    /// How long a call waits for an exchange (`UPSTREAM_TIMEOUT`).
    let wait: Duration
    static let cacheCapacity = 10_000
    /// An exchanged token is not presented in its last minute.
    static let margin: TimeInterval = 60

    private struct CacheKey: Hashable, Sendable {
        let grantID: String
        let scope: String
        let audience: String
        /// The upstream token it was exchanged from: a renewed one (or a new sign-in) exchanges again.
        let subjectDigest: String
    }

    private struct Exchanged {
        let token: String
        let usableUntil: Date
    }

    init(
        provider: UpstreamProvider, grants: any GrantStore, audience: String, clock: any WallClock, logger: Logger,
        wait: Duration = .seconds(10), audit: AuditLog = AuditLog()
    ) {
        self.audit = audit
        self.wait = wait
        self.provider = provider
        self.grants = grants
        self.audience = audience
        self.clock = clock
        self.logger = logger
    }

    func token(grantID: String, upstreamToken: String, scope: ScopeSet, audience: String) async throws(APIFailure)
        -> String
    {
        let key = CacheKey(
            grantID: grantID, scope: scope.description, audience: audience,
            subjectDigest: SecretDigest.hex(upstreamToken))
        let now = clock.now
        if let cached = cache.withLock({ $0[key] }), now < cached.usableUntil { return cached.token }
        do {
            return try await exchanges.value(
                for: key, waitingAtMost: wait, operation: "the token exchange", workTimeout: wait * 2 + .seconds(1)
            ) { try await self.exchange(key, grantID: grantID, upstreamToken: upstreamToken, scope: scope) }
        } catch let failure as APIFailure {
            throw failure
        } catch {
            logger.error("The token exchange did not finish in time", metadata: ["error": "\(error)"])
            throw .providerUnavailable
        }
    }

    private func exchange(_ key: CacheKey, grantID: String, upstreamToken: String, scope: ScopeSet)
        async throws(APIFailure) -> String
    {
        let now = clock.now
        let response: UpstreamTokenResponse
        do {
            response = try await provider.exchange(subjectToken: upstreamToken, audience: key.audience, scope: scope)
        } catch {
            switch error {
            case .invalidGrant(let reason):
                // The provider no longer accepts the user's token: the sign-in there ended. The grant ends too, so
                // that the client is sent to sign in again rather than refreshing into the same refusal.
                logger.notice(
                    "The provider refused to exchange the user's token; the grant ends",
                    metadata: ["oauth.grant_id": "\(grantID)", "reason": "\(reason)"])
                _ = try? await grants.revokeGrant(id: grantID, now: now)
                audit.record(.grantEndedByProvider, grant: grantID)
                throw .signInRequired
            case .unreachable, .timedOut:
                logger.error("The token exchange could not reach the provider", metadata: ["error": "\(error)"])
                throw .providerUnavailable
            case .rejected, .protocolViolation:
                // The provider does not allow this exchange (not enabled for the gateway's client, an audience it
                // does not know): an operator's problem, named in the log.
                logger.error("The provider refused the token exchange", metadata: ["error": "\(error)"])
                throw .gatewayUnavailable
            }
        }
        let lifetime = response.expiresIn ?? 300
        // A short-lived token is kept for half its life.
        let exchanged = Exchanged(
            token: response.accessToken, usableUntil: now.addingTimeInterval(lifetime - min(Self.margin, lifetime / 2)))
        cache.withLock { cache in
            if cache.count >= Self.cacheCapacity {
                cache = cache.filter { now < $0.value.usableUntil }
                if cache.count >= Self.cacheCapacity { cache.removeAll(keepingCapacity: true) }
            }
            cache[key] = exchanged
        }
        return response.accessToken
    }
}

/// The credential of a grant under `DOWNSTREAM_TOKENS=exchange`.
struct ExchangedCredential: DownstreamCredentialSource {
    let exchanges: TokenExchanges
    let tokens: UpstreamTokenService
    let grant: Grant
    let granted: ScopeSet

    func credential(scope: ScopeSet, audience: String?) async throws(APIFailure) -> DownstreamCredential {
        if let missing = scope.subtracting(granted).sorted.first {
            throw .forbidden("this connection was not granted the \(missing) scope")
        }
        let upstream = try await GrantCredentials.upstreamAccessToken(tokens, grant: grant)
        return .bearer(
            try await exchanges.token(
                grantID: grant.id, upstreamToken: upstream, scope: scope, audience: audience ?? self.exchanges.audience))
    }
}
