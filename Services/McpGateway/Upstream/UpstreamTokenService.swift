import Foundation
import JWTAuth
import Logging
import Resilience
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
    /// The provider is unreachable, failing or slow: try again later. The grant is kept.
    case providerUnavailable(String)
    /// The gateway's database did not answer: try again later. The grant is kept.
    case storageUnavailable
    /// The grant's upstream tokens are sealed under a key this gateway does not have (`GATEWAY_ENCRYPTION_KEY`
    /// changed without the old one in `GATEWAY_ENCRYPTION_KEYS_OLD`) or do not authenticate. An operator's mistake,
    /// not the user's: the grant is kept, so that it works again once the key is back.
    case credentialsUnreadable
}

/// Hands out the user's upstream access token for a tool call, refreshing it first when it expires within a minute.
///
/// **No request waits for ever, and no fault of ours signs a user out.**
/// - Refreshes are single-flight per grant: on one instance through ``SingleFlight`` (ten concurrent tool calls of a
///   user cause one refresh), across instances through a lease in the grant, taken with a compare-and-swap.
/// - A tool call waits for a refresh `UPSTREAM_TIMEOUT` at most, and then gets a tool error; the refresh goes on. Once
///   sent, a refresh waits for the provider's answer `UPSTREAM_REFRESH_TIMEOUT`, longer, and stores whatever the
///   provider answers: the provider has rotated the refresh token by then, and the old one must not be sent again.
/// - The lease covers the whole refresh (its deadline plus a database call): another instance takes over only from a
///   refresh that can no longer store anything, and then sends the same refresh token again, which the provider
///   accepts within its reuse interval (``DependencyTimeouts/requiredReuseInterval``).
/// - An answer that cannot be stored (the database failed just then) is kept in memory and stored again in the
///   background until the database answers, and this instance uses it meanwhile.
/// - Only the provider's explicit refusal (`invalid_grant`) ends the grant: a timeout, a reset, a 5xx or an outage
///   never does. A refresh that failed is retried by the next call, with the same refresh token.
final class UpstreamTokenService: Sendable {
    static let refreshMargin: TimeInterval = 60

    /// How long callers wait, and how long a refresh may hold a grant.
    struct Timeouts: Sendable {
        /// `UPSTREAM_TIMEOUT`: how long a tool call waits for a refresh (and discovery may take).
        var wait: Duration = .seconds(10)
        /// `UPSTREAM_REFRESH_TIMEOUT`: how long a refresh, once sent, waits for the provider's answer.
        var refresh: Duration = .seconds(12)
        /// `GATEWAY_DATABASE_TIMEOUT`.
        var database: Duration = .seconds(5)

        /// The time a refresh keeps, within its lease, to store the provider's answer.
        static let storeBudget: Duration = .seconds(2)
        /// The lease's start is rounded down to the second, and taking it costs a database call: at most this much of
        /// the lease may be gone before the refresh is sent, or it is not sent.
        static let leaseMargin: Duration = .seconds(2)

        /// How long one refresh holds a grant against other instances (``DependencyTimeouts/refreshLease``): the
        /// provider's answer and storing it, from the moment the refresh is sent.
        var lease: Duration { refresh + Self.storeBudget + Self.leaseMargin }

        /// How long a refresh may run at most: storing a kept answer and reading the grant, waiting out another
        /// instance's lease, taking its own, discovery, the provider's answer, storing it. After it, the next caller
        /// starts afresh whatever the refresh does.
        var work: Duration { database * 4 + lease + wait + refresh + .seconds(2) }
    }

    private let grants: any GrantStore
    private let upstreamTokens: any UpstreamTokenStore
    private let refresher: any UpstreamRefreshing
    private let vault: UpstreamTokenVault
    private let clock: any WallClock
    /// What waiting out another instance's lease is measured on.
    private let waiting: any WaitingClock
    /// Where a grant the provider ended is recorded.
    private let audit: AuditLog
    private let logger: Logger
    let timeouts: Timeouts
    /// Whether other processes refresh the same grants (PostgreSQL): then their leases are waited for. With SQLite this
    /// process is the only one, and a lease found in the database was left by a previous run that stopped.
    private let sharedDatabase: Bool
    private let refreshes = SingleFlight<String, String>()
    /// Access tokens already decrypted, by grant, with the ciphertext they came from: a tool call whose grant still
    /// holds that ciphertext, fresh, gets its token without decrypting it again. Bounded.
    private let opened = Mutex<[String: (sealed: SealedValue, token: String)]>([:])
    private static let openedLimit = 10_000
    /// Grants whose interrupted refresh this instance is retrying in the background.
    private let retrying = Mutex(Set<String>())
    /// Answers of the provider that could not be stored yet, by grant. Bounded.
    private let unsaved = Mutex<[String: UnsavedTokens]>([:])
    private static let unsavedLimit = 10_000

    /// A provider's answer waiting to be stored: it replaces `expected` (the grant's tokens with this instance's
    /// lease) once the database answers.
    private struct UnsavedTokens: Sendable {
        let expected: UpstreamTokens
        let tokens: UpstreamTokens
        let accessToken: String
        let receivedAt: ContinuousClock.Instant
    }

    init(
        grants: any GrantStore, upstreamTokens: any UpstreamTokenStore, refresher: any UpstreamRefreshing,
        cipher: TokenCipher, clock: any WallClock, logger: Logger, sharedDatabase: Bool = true,
        timeouts: Timeouts = Timeouts(), waiting: any WaitingClock = SystemWaitingClock(), audit: AuditLog = AuditLog()
    ) {
        self.audit = audit
        self.waiting = waiting
        self.sharedDatabase = sharedDatabase
        self.grants = grants
        self.upstreamTokens = upstreamTokens
        self.refresher = refresher
        self.vault = UpstreamTokenVault(cipher: cipher)
        self.clock = clock
        self.logger = logger
        self.timeouts = timeouts
    }

    /// Whether a refresh of `grantID` runs on this instance (tests).
    func isRefreshing(_ grantID: String) -> Bool { refreshes.isRunning(grantID) }

    /// A usable upstream access token for the grant.
    ///
    /// - Parameter known: The grant, if the caller already loaded it; it is read from the store otherwise.
    func accessToken(grantID: String, known: Grant? = nil) async throws(UpstreamAccessError) -> String {
        if let known, known.id == grantID, known.isActive(at: clock.now), let upstream = known.upstream,
            upstream.expiresAt.timeIntervalSince(clock.now) > Self.refreshMargin,
            let opened = opened.withLock({ $0[grantID] }), opened.sealed == upstream.accessToken
        {
            return opened.token
        }
        let grant: Grant
        if let known, known.id == grantID, known.isActive(at: clock.now) {
            grant = known
        } else {
            grant = try await activeGrant(grantID)
        }
        if let token = try freshToken(of: grant) { return token }
        do {
            return try await refreshes.value(
                for: grantID, waitingAtMost: timeouts.wait, operation: "the upstream token refresh",
                workTimeout: timeouts.work
            ) { try await self.refreshOrFail(grantID: grantID) }
        } catch let error as UpstreamAccessError {
            throw error
        } catch let error as DeadlineExceeded {
            logger.warning(
                "A tool call stopped waiting for the upstream token refresh; the refresh goes on",
                metadata: ["oauth.grant_id": "\(grantID)", "error": "\(error)"])
            throw .providerUnavailable(error.description)
        } catch {
            throw .providerUnavailable("\(error)")
        }
    }

    private func activeGrant(_ grantID: String) async throws(UpstreamAccessError) -> Grant {
        let found: Grant?
        do { found = try await grants.grant(id: grantID) } catch {
            logger.error("Reading a grant failed", metadata: ["oauth.grant_id": "\(grantID)", "error": "\(error)"])
            throw .storageUnavailable
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

    /// The refresh of one grant, with every failure as an ``UpstreamAccessError``.
    private func refreshOrFail(grantID: String) async throws(UpstreamAccessError) -> String {
        do {
            return try await refresh(grantID: grantID)
        } catch let error as UpstreamAccessError {
            throw error
        } catch let error as DependencyUnavailable {
            logger.error(
                "The database failed during an upstream token refresh; the grant is kept",
                metadata: ["oauth.grant_id": "\(grantID)", "error": "\(error.detail)"])
            throw .storageUnavailable
        } catch {
            logger.error(
                "An upstream token refresh failed", metadata: ["oauth.grant_id": "\(grantID)", "error": "\(error)"])
            throw .providerUnavailable("\(error)")
        }
    }

    private func refresh(grantID: String) async throws -> String {
        // An answer this instance received but could not store: stored now, rather than the refresh token it replaced
        // being sent again.
        if let token = try await storeUnsaved(grantID: grantID) { return token }
        // Read the grant again: a refresh that finished while this caller was loading it must not be repeated with
        // the refresh token it already used up (the provider would see a reuse and revoke the user's session).
        var grant = try await activeGrant(grantID)
        var attempt: UpstreamTokens
        var leaseWait = waiting.now
        var observedLease: Date? = nil
        var waited = false
        while true {
            if let token = try freshToken(of: grant) {
                if waited { GatewayMetrics.upstreamRefresh(.joined) }
                return token
            }
            // Another instance holds the refresh: wait for the tokens it stores, until its lease ends (then it
            // stopped during the refresh, and this instance takes over). The wait is counted from when this lease
            // was first seen: a lease another instance took while this one waited is waited for in full. (Counting
            // at all guards against an instance whose clock is far ahead.)
            let current = try upstream(of: grant)
            if current.refreshLeaseUntil != observedLease {
                observedLease = current.refreshLeaseUntil
                leaseWait = waiting.now
            }
            if sharedDatabase, let lease = current.refreshLeaseUntil, lease > clock.now,
                waiting.now - leaseWait < timeouts.lease
            {
                try await waiting.sleep(for: .milliseconds(50))
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
            attempt.refreshLeaseUntil = started.addingTimeInterval(seconds(timeouts.lease))
            if try await upstreamTokens.replaceUpstream(grantID: grant.id, expected: current, with: attempt) {
                break
            }
            grant = try await activeGrant(grantID)
        }
        // The lease must still cover the whole refresh from now: sending the refresh token later than that (the
        // database was slow to take the lease) could overlap with another instance taking over.
        if let lease = attempt.refreshLeaseUntil,
            clock.now.addingTimeInterval(seconds(timeouts.refresh + Timeouts.storeBudget)) > lease
        {
            await release(attempt, of: grant)
            throw UpstreamAccessError.providerUnavailable("the database was too slow to take the refresh's lease")
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
                await release(attempt, of: grant)
                GatewayMetrics.upstreamRefresh(.failed)
                throw UpstreamAccessError.providerUnavailable(error.description)
            }
        }
        guard stored != nil || revalidated != nil else {
            logger.info(
                "Upstream token expired (or the provider no longer accepts it) with no refresh token: sign in again",
                metadata: ["oauth.client_id": "\(grant.clientID)"])
            try await grants.revokeGrant(id: grant.id, now: clock.now)
            audit.record(
                .grantEndedByProvider, user: grant.user?.subject, client: grant.clientID, grant: grant.id)
            throw UpstreamAccessError.signInRequired
        }
        let response: UpstreamTokenResponse
        do {
            if let revalidated {
                response = revalidated
            } else if let refreshToken = stored {
                response = try await refresher.refresh(refreshToken: refreshToken)
            } else {
                throw UpstreamError.protocolViolation("no refresh token")
            }
        } catch UpstreamError.invalidGrant(let reason) {
            try await providerRefused(grant, reason: reason, interrupted: interrupted)
        } catch let error as UpstreamError {
            if case .rejected = error {} else {
                // No answer, or none that could be read: the provider may have rotated the refresh token. The same
                // token is sent again soon, within the provider's reuse interval, whether or not the user calls.
                retryInterrupted(grantID: grant.id, attempt: attempt)
            }
            GatewayMetrics.upstreamRefresh(.failed)
            if case .timedOut = error {
                GatewayMetrics.dependencyFailure(.provider, timedOut: true)
            } else {
                GatewayMetrics.dependencyFailure(.provider, timedOut: false)
            }
            // Release the lease (the marker stays: the provider may have spent the token) so that the next tool call
            // tries again at once, with the same refresh token, on whichever instance it reaches.
            await release(attempt, of: grant)
            logger.error(
                "Refreshing the upstream tokens failed; the grant is kept, and the next call tries again",
                metadata: ["oauth.client_id": "\(grant.clientID)", "oauth.grant_id": "\(grant.id)", "error": "\(error)"])
            throw UpstreamAccessError.providerUnavailable(error.description)
        }
        let tokens: UpstreamTokens
        do { tokens = try vault.seal(response, grantID: grant.id, now: clock.now, previous: attempt) } catch {
            throw unreadable(grant, error)
        }
        GatewayMetrics.upstreamRefresh(.refreshed)
        // Stored only if this attempt still holds the grant: another instance that took over after the lease
        // lapsed must not have its tokens overwritten.
        let replaced: Bool
        do {
            replaced = try await store(tokens, replacing: attempt, of: grant.id)
        } catch {
            // The provider has rotated the refresh token: its answer is the only copy. Kept, stored as soon as the
            // database answers, and used meanwhile.
            keepUnsaved(
                grantID: grant.id,
                UnsavedTokens(
                    expected: attempt, tokens: tokens, accessToken: response.accessToken,
                    receivedAt: ContinuousClock.now))
            logger.error(
                """
                The provider answered a refresh but the database did not take the new tokens; they are kept in \
                memory and stored as soon as it answers
                """,
                metadata: ["oauth.grant_id": "\(grant.id)", "error": "\(error)"])
            return response.accessToken
        }
        if !replaced {
            logger.warning(
                "An upstream refresh outlived its lease and another refresh replaced the grant's tokens meanwhile",
                metadata: ["oauth.client_id": "\(grant.clientID)", "oauth.grant_id": "\(grant.id)"])
        }
        logger.debug("Upstream token refreshed", metadata: ["oauth.client_id": "\(grant.clientID)"])
        return response.accessToken
    }

    /// Replaces the grant's tokens with `tokens` if this attempt still holds the grant: its lease is the grant's, even
    /// when the ciphertexts beside it changed (`admin reseal` sealed them again meanwhile).
    private func store(_ tokens: UpstreamTokens, replacing attempt: UpstreamTokens, of grantID: String) async throws
        -> Bool
    {
        if try await upstreamTokens.replaceUpstream(grantID: grantID, expected: attempt, with: tokens) { return true }
        guard let current = try await grants.grant(id: grantID)?.upstream,
            current.refreshStartedAt == attempt.refreshStartedAt, current.refreshLeaseUntil == attempt.refreshLeaseUntil
        else { return false }
        return try await upstreamTokens.replaceUpstream(grantID: grantID, expected: current, with: tokens)
    }

    /// After a refresh whose answer may have been lost, sends the same refresh token again from this instance, in
    /// the background, once, a second later, well within the provider's reuse interval
    /// (``DependencyTimeouts/requiredReuseInterval``):
    /// a user who makes no call for a while must not find their sign-in ended because the retry waited for them.
    /// Each try goes through the single flight, so it joins a refresh a call started meanwhile.
    private func retryInterrupted(grantID: String, attempt: UpstreamTokens) {
        // One round of retries per grant at a time: a retry that fails does not start another round.
        guard retrying.withLock({ $0.insert(grantID).inserted }) else { return }
        let timeouts = self.timeouts
        Task {
            defer { retrying.withLock { _ = $0.remove(grantID) } }
            for delay in [Duration.seconds(1)] {
                try? await Task.sleep(for: delay)
                // Done meanwhile (a call refreshed it, or the grant ended), or another refresh holds it?
                guard let grant = try? await grants.grant(id: grantID), grant.isActive(at: clock.now),
                    let upstream = grant.upstream, upstream.refreshStartedAt != nil,
                    (upstream.refreshLeaseUntil ?? .distantPast) <= clock.now
                else { return }
                let refreshed = try? await refreshes.value(
                    for: grantID, waitingAtMost: timeouts.work, operation: "the upstream token refresh",
                    workTimeout: timeouts.work
                ) { try await self.refreshOrFail(grantID: grantID) }
                if refreshed != nil { return }
            }
        }
    }

    private func seconds(_ duration: Duration) -> TimeInterval { duration / .seconds(1) }

    /// The provider refused the refresh (`invalid_grant`): the sign-in there ended, and so does the grant.
    private func providerRefused(_ grant: Grant, reason: String, interrupted: Date?) async throws -> Never {
        let metadata: Logger.Metadata = [
            "oauth.client_id": "\(grant.clientID)", "oauth.grant_id": "\(grant.id)", "reason": "\(reason)",
        ]
        if let interrupted {
            logger.warning(
                """
                The provider refused a refresh token that an earlier refresh, started at \(interrupted) and never \
                finished, had probably spent: not a reuse attack, but an answer lost for longer than the provider's \
                reuse interval (docs/operations.md). The user must sign in again; the client is told so with a 401
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
        GatewayMetrics.upstreamRefresh(.refused)
        // Without the database the grant cannot be ended now; the next call is refused again, and ends it then.
        if (try? await grants.revokeGrant(id: grant.id, now: clock.now)) != nil {
            audit.record(
                .grantEndedByProvider, user: grant.user?.subject, client: grant.clientID, grant: grant.id,
                detail: ["upstream.interrupted_refresh": interrupted == nil ? "false" : "true"])
        }
        throw UpstreamAccessError.signInRequired
    }

    /// Gives the grant back to the next refresh, on any instance; the marker of the attempt stays.
    private func release(_ attempt: UpstreamTokens, of grant: Grant) async {
        var released = attempt
        released.refreshLeaseUntil = nil
        _ = try? await upstreamTokens.replaceUpstream(grantID: grant.id, expected: attempt, with: released)
    }

    // MARK: Answers not yet stored

    private func keepUnsaved(grantID: String, _ entry: UnsavedTokens) {
        let (first, kept) = unsaved.withLock { unsaved in
            if unsaved.count >= Self.unsavedLimit, unsaved[grantID] == nil { return (false, false) }
            let first = unsaved[grantID] == nil
            unsaved[grantID] = entry
            return (first, true)
        }
        if !kept {
            logger.error(
                "Too many provider answers wait for the database: this one is not kept, and the user may have to sign in again",
                metadata: ["oauth.grant_id": "\(grantID)"])
        }
        guard first else { return }
        // Stored in the background, so that another instance finds the new tokens once the database is back instead
        // of taking over with the spent refresh token.
        Task {
            var delay: Duration = .milliseconds(250)
            while unsaved.withLock({ $0[grantID] != nil }) {
                try? await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(2))
                _ = try? await storeUnsaved(grantID: grantID)
            }
        }
    }

    /// Stores a kept answer; its access token when it is stored (or the database still fails and the token is still
    /// fresh), `nil` when there is none or the grant changed meanwhile (the answer is then dropped).
    private func storeUnsaved(grantID: String) async throws -> String? {
        guard let entry = unsaved.withLock({ $0[grantID] }) else { return nil }
        let fresh = entry.tokens.expiresAt.timeIntervalSince(clock.now) > Self.refreshMargin
        let replaced: Bool
        do {
            replaced = try await upstreamTokens.replaceUpstream(
                grantID: grantID, expected: entry.expected, with: entry.tokens)
        } catch {
            if fresh { return entry.accessToken }
            throw error
        }
        unsaved.withLock { unsaved in
            if unsaved[grantID]?.receivedAt == entry.receivedAt { unsaved[grantID] = nil }
        }
        if replaced {
            logger.notice("Upstream tokens kept in memory were stored", metadata: ["oauth.grant_id": "\(grantID)"])
            return fresh ? entry.accessToken : nil
        }
        logger.warning(
            "Upstream tokens kept in memory were dropped: the grant changed meanwhile",
            metadata: ["oauth.grant_id": "\(grantID)"])
        return nil
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
