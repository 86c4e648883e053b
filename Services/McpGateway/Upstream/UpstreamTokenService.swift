import Foundation
import JWTAuth
import Logging
import Synchronization

/// Refreshes upstream tokens with the provider; ``UpstreamProvider`` in production, a fake in tests.
protocol UpstreamRefreshing: Sendable {
    func refresh(refreshToken: String) async throws(UpstreamError) -> UpstreamTokenResponse
    /// For a provider whose tokens come without a refresh token and never expire (GitHub): asks the provider whether
    /// `accessToken` still works, and answers it with a new lifetime if so; `nil` for providers that cannot say
    /// (an expired token without a refresh token then ends the sign-in). `invalidGrant` when the provider refuses it.
    func revalidate(accessToken: String) async throws(UpstreamError) -> UpstreamTokenResponse?
}

extension UpstreamRefreshing {
    func revalidate(accessToken: String) async throws(UpstreamError) -> UpstreamTokenResponse? { nil }
}

extension UpstreamProvider: UpstreamRefreshing {}

/// Why the gateway cannot call TodosAPI for a user right now.
enum UpstreamAccessError: Error, Equatable {
    /// The grant is gone, or the provider refused to refresh it: the MCP client must sign the user in again.
    case signInRequired
    /// The provider is unreachable or failing: try again later.
    case providerUnavailable(String)
    /// The grant's upstream tokens are sealed under a key this gateway does not have (`GATEWAY_ENCRYPTION_KEY`
    /// changed without the old one in `GATEWAY_ENCRYPTION_KEYS_OLD`) or do not authenticate. An operator's mistake,
    /// not the user's: the grant is kept, so that it works again once the key is back.
    case credentialsUnreadable
}

/// Hands out the user's upstream access token for a tool call, refreshing it first when it expires within a minute.
///
/// Refreshes are single-flight per grant: ten concurrent tool calls of one user cause one refresh, on one instance
/// (a task per grant) and across instances (a lease in the grant, taken with a compare-and-swap). A refresh the
/// provider refuses (`invalid_grant`) revokes the gateway grant, so the client's next request gets a 401 and signs the
/// user in again.
actor UpstreamTokenService {
    static let refreshMargin: TimeInterval = 60
    /// How long one refresh may hold a grant (the provider's timeout is 10 s): other callers, on any instance, wait
    /// for its result that long at most.
    static let refreshLease: TimeInterval = 12

    private let grants: any GrantStore
    private let upstreamTokens: any UpstreamTokenStore
    private let refresher: any UpstreamRefreshing
    private let vault: UpstreamTokenVault
    private let clock: any WallClock
    private let logger: Logger
    /// Whether other processes refresh the same grants (PostgreSQL): then their leases are waited for. With SQLite this
    /// process is the only one, and a lease found in the database was left by a previous run that stopped.
    private let sharedDatabase: Bool
    private var refreshing: [String: Task<String, any Error>] = [:]
    /// Access tokens already decrypted, by grant, with the ciphertext they came from: a tool call whose grant still
    /// holds that ciphertext, fresh, gets its token without decrypting it again or waiting for the actor. Bounded.
    private let opened = Mutex<[String: (sealed: SealedValue, token: String)]>([:])
    private static let openedLimit = 10_000

    init(
        grants: any GrantStore, upstreamTokens: any UpstreamTokenStore, refresher: any UpstreamRefreshing,
        cipher: TokenCipher, clock: any WallClock,
        logger: Logger, sharedDatabase: Bool = true
    ) {
        self.sharedDatabase = sharedDatabase
        self.grants = grants
        self.upstreamTokens = upstreamTokens
        self.refresher = refresher
        self.vault = UpstreamTokenVault(cipher: cipher)
        self.clock = clock
        self.logger = logger
    }

    /// A usable upstream access token for the grant.
    ///
    /// - Parameter known: The grant, if the caller already loaded it; it is read from the store otherwise.
    nonisolated func accessToken(grantID: String, known: Grant? = nil) async throws(UpstreamAccessError) -> String {
        if let known, known.id == grantID, known.isActive(at: clock.now), let upstream = known.upstream,
            upstream.expiresAt.timeIntervalSince(clock.now) > Self.refreshMargin,
            let opened = opened.withLock({ $0[grantID] }), opened.sealed == upstream.accessToken
        {
            return opened.token
        }
        return try await renewedAccessToken(grantID: grantID, known: known)
    }

    /// ``accessToken(grantID:known:)`` when the token must be read from the store, decrypted or refreshed.
    private func renewedAccessToken(grantID: String, known: Grant?) async throws(UpstreamAccessError) -> String {
        let grant: Grant
        if let known, known.id == grantID, known.isActive(at: clock.now) {
            grant = known
        } else {
            grant = try await activeGrant(grantID)
        }
        if let token = try freshToken(of: grant) { return token }
        if let running = refreshing[grantID] { return try await value(of: running) }
        let task = Task { try await self.refresh(grantID: grantID) }
        refreshing[grantID] = task
        defer { refreshing[grantID] = nil }
        return try await value(of: task)
    }

    private func activeGrant(_ grantID: String) async throws(UpstreamAccessError) -> Grant {
        let found: Grant?
        do { found = try await grants.grant(id: grantID) } catch {
            logger.error("Reading a grant failed", metadata: ["oauth.grant_id": "\(grantID)", "error": "\(error)"])
            throw .providerUnavailable("the gateway's storage failed")
        }
        guard let grant = found, grant.isActive(at: clock.now) else { throw .signInRequired }
        return grant
    }

    /// The provider's tokens of a grant; a grant no provider signed in (a machine client's, an identity assertion's)
    /// has none to renew.
    private func upstream(of grant: Grant) throws(UpstreamAccessError) -> UpstreamTokens {
        guard let upstream = grant.upstream else { throw .signInRequired }
        return upstream
    }

    /// The grant's access token, unless it expires within ``refreshMargin``.
    private func freshToken(of grant: Grant) throws(UpstreamAccessError) -> String? {
        let upstream = try upstream(of: grant)
        guard upstream.expiresAt.timeIntervalSince(clock.now) > Self.refreshMargin else { return nil }
        let token: String
        do { token = try vault.accessToken(of: grant) } catch { throw unreadable(grant, error) }
        opened.withLock { opened in
            if opened.count >= Self.openedLimit { opened.removeAll() }
            opened[grant.id] = (upstream.accessToken, token)
        }
        return token
    }

    private func value(of task: Task<String, any Error>) async throws(UpstreamAccessError) -> String {
        do { return try await task.value } catch let error as UpstreamAccessError { throw error } catch {
            throw .providerUnavailable("\(error)")
        }
    }

    private func refresh(grantID: String) async throws -> String {
        // Read the grant again: a refresh that finished while this caller was loading it must not be repeated with
        // the refresh token it already used up (the provider would see a reuse and revoke the user's session).
        var grant = try await activeGrant(grantID)
        var attempt: UpstreamTokens
        var leaseWait = ContinuousClock.now
        var waited = false
        while true {
            if let token = try freshToken(of: grant) {
                if waited { GatewayMetrics.upstreamRefresh(.joined) }
                return token
            }
            // Another instance holds the refresh: wait for the tokens it stores, until its lease ends (then it
            // stopped during the refresh, and this instance takes over).
            let current = try upstream(of: grant)
            if sharedDatabase, let lease = current.refreshLeaseUntil, lease > clock.now,
                ContinuousClock.now - leaseWait < .seconds(Self.refreshLease)
            {
                try await Task.sleep(for: .milliseconds(50))
                waited = true
                grant = try await activeGrant(grantID)
                continue
            }
            // Record the attempt durably before the provider can spend the token, with a compare-and-swap on what
            // was read: of several instances, one wins; if this process dies before it stores what the provider
            // returns, the next attempt knows.
            // Whole seconds: the value is compared again after a round trip through the database's JSON, where a
            // fraction of a second may not come back bit for bit.
            let started = Date(timeIntervalSince1970: clock.now.timeIntervalSince1970.rounded(.down))
            attempt = current
            attempt.refreshStartedAt = started
            attempt.refreshLeaseUntil = started.addingTimeInterval(Self.refreshLease)
            if try await upstreamTokens.replaceUpstream(grantID: grant.id, expected: current, with: attempt) {
                break
            }
            grant = try await activeGrant(grantID)
            leaseWait = ContinuousClock.now
        }
        let interrupted = try upstream(of: grant).refreshStartedAt
        let stored: String?
        do { stored = try vault.refreshToken(of: grant) } catch { throw unreadable(grant, error) }
        var revalidated: UpstreamTokenResponse? = nil
        if stored == nil {
            // No refresh token: a provider whose tokens do not expire is asked whether this one still works.
            let current: String
            do { current = try vault.accessToken(of: grant) } catch { throw unreadable(grant, error) }
            do { revalidated = try await refresher.revalidate(accessToken: current) } catch .invalidGrant {
                revalidated = nil
            } catch {
                var released = attempt
                released.refreshLeaseUntil = nil
                _ = try? await upstreamTokens.replaceUpstream(grantID: grant.id, expected: attempt, with: released)
                GatewayMetrics.upstreamRefresh(.failed)
                throw UpstreamAccessError.providerUnavailable(error.description)
            }
        }
        guard stored != nil || revalidated != nil else {
            logger.info(
                "Upstream token expired (or the provider no longer accepts it) with no refresh token: sign in again",
                metadata: ["oauth.client_id": "\(grant.clientID)"])
            try await grants.revokeGrant(id: grant.id, now: clock.now)
            AuditLog.shared.record(
                .grantEndedByProvider, user: grant.user?.subject, client: grant.clientID, grant: grant.id)
            throw UpstreamAccessError.signInRequired
        }
        do {
            let response: UpstreamTokenResponse
            if let revalidated {
                response = revalidated
            } else if let refreshToken = stored {
                response = try await refresher.refresh(refreshToken: refreshToken)
            } else {
                throw UpstreamError.protocolViolation("no refresh token")
            }
            let tokens = try vault.seal(response, grantID: grant.id, now: clock.now, previous: attempt)
            // Stored only if this attempt still holds the grant: another instance that took over after the lease
            // lapsed (a slow provider) must not have its tokens overwritten.
            if try await !upstreamTokens.replaceUpstream(grantID: grant.id, expected: attempt, with: tokens) {
                logger.warning(
                    "An upstream refresh outlived its lease and another refresh replaced the grant's tokens meanwhile",
                    metadata: ["oauth.client_id": "\(grant.clientID)", "oauth.grant_id": "\(grant.id)"])
            }
            GatewayMetrics.upstreamRefresh(.refreshed)
            logger.debug("Upstream token refreshed", metadata: ["oauth.client_id": "\(grant.clientID)"])
            return response.accessToken
        } catch UpstreamError.invalidGrant(let reason) {
            let metadata: Logger.Metadata = [
                "oauth.client_id": "\(grant.clientID)", "oauth.grant_id": "\(grant.id)", "reason": "\(reason)",
            ]
            if let interrupted {
                logger.warning(
                    """
                    The provider refused a refresh token that an earlier refresh, started at \(interrupted) and never \
                    finished (the gateway stopped during it), had probably spent: not a reuse attack. The user must \
                    sign in again; the client is told so with a 401
                    """,
                    metadata: metadata)
            } else {
                logger.notice(
                    """
                    The provider refused the refresh (the user's session there ended or was revoked); the user must \
                    sign in again, the client is told so with a 401
                    """,
                    metadata: metadata)
            }
            try await grants.revokeGrant(id: grant.id, now: clock.now)
            GatewayMetrics.upstreamRefresh(.refused)
            AuditLog.shared.record(
                .grantEndedByProvider, user: grant.user?.subject, client: grant.clientID, grant: grant.id,
                detail: ["upstream.interrupted_refresh": interrupted == nil ? "false" : "true"])
            throw UpstreamAccessError.signInRequired
        } catch let error as UpstreamError {
            GatewayMetrics.upstreamRefresh(.failed)
            // Release the lease (the marker stays: the provider may have spent the token) so that the next tool call
            // tries again at once.
            var released = attempt
            released.refreshLeaseUntil = nil
            _ = try? await upstreamTokens.replaceUpstream(grantID: grant.id, expected: attempt, with: released)
            logger.error(
                "Refreshing the upstream tokens failed; the grant is kept",
                metadata: ["oauth.client_id": "\(grant.clientID)", "error": "\(error)"])
            throw UpstreamAccessError.providerUnavailable(error.description)
        }
    }

    /// Logs, once per call, why a grant's tokens cannot be opened, naming the key id (never a key), and keeps the
    /// grant.
    private func unreadable(_ grant: Grant, _ error: any Error) -> UpstreamAccessError {
        logger.error(
            "Cannot decrypt the upstream tokens of a grant; it is kept, and works again once the key is configured",
            metadata: [
                "oauth.client_id": "\(grant.clientID)", "oauth.grant_id": "\(grant.id)",
                "crypto.key_id": "\(grant.upstream?.accessToken.keyID ?? "none")", "error": "\(error)",
            ])
        return .credentialsUnreadable
    }
}
