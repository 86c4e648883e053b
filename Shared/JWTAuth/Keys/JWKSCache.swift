import Foundation
import Logging
import Metrics
import Synchronization

/// An issuer's signing keys, fetched from its JWKS and kept in memory.
///
/// - The keys are refreshed after the `Cache-Control: max-age` of the JWKS response, clamped to
///   ``Configuration/minimumLifetime`` … ``Configuration/maximumLifetime``. A request arriving after that uses the
///   cached keys while one refresh runs in the background.
/// - A token naming an unknown `kid` triggers a refresh, at most once per ``Configuration/forcedRefreshCooldown``
///   (an attacker cannot make us hammer the IdP), and single-flight: concurrent requests wait for the same fetch.
/// - When the endpoint is down or answers garbage, the cached keys keep working (stale-if-error); the failure is
///   logged once per outage, not once per request, and requests stop waiting for fetches: retries (still at most one
///   per cooldown) run in the background until the endpoint recovers.
public final class JWKSCache: VerificationKeyProvider {
    /// Refresh policy.
    public struct Configuration: Sendable {
        /// Where the keys are published.
        public var source: JWKSSource
        /// The algorithms keys may be used with; keys restricted to others are skipped.
        public var allowedAlgorithms: Set<SignatureAlgorithm>
        /// Lower bound for the cache lifetime, whatever `max-age` says. Defaults to 5 minutes.
        public var minimumLifetime: TimeInterval
        /// Upper bound for the cache lifetime. Defaults to 24 hours.
        public var maximumLifetime: TimeInterval
        /// Lifetime when the response has no `max-age`. Defaults to 1 hour.
        public var defaultLifetime: TimeInterval
        /// The shortest time between two refreshes forced by unknown `kid`s or retried after failures. Defaults to 5 s.
        public var forcedRefreshCooldown: TimeInterval

        /// Creates a policy for `source`.
        public init(
            source: JWKSSource,
            allowedAlgorithms: Set<SignatureAlgorithm> = [.rs256],
            minimumLifetime: TimeInterval = 5 * 60,
            maximumLifetime: TimeInterval = 24 * 60 * 60,
            defaultLifetime: TimeInterval = 60 * 60,
            forcedRefreshCooldown: TimeInterval = 5
        ) {
            self.source = source
            self.allowedAlgorithms = allowedAlgorithms
            self.minimumLifetime = minimumLifetime
            self.maximumLifetime = maximumLifetime
            self.defaultLifetime = defaultLifetime
            self.forcedRefreshCooldown = forcedRefreshCooldown
        }
    }

    private struct State {
        var keys: KeySet?
        var freshUntil: Date = .distantPast
        var lastForcedAttempt: Date?
        var refresh: Task<Void, Never>?
        var failing = false
        var jwksURL: String?
    }

    /// The policy in force.
    public let configuration: Configuration
    private let fetcher: any DocumentFetching
    private let clock: any WallClock
    private let logger: Logger
    private let state = Mutex(State())

    /// Creates an empty cache; keys are fetched on first use or by ``refresh()``.
    public init(
        configuration: Configuration,
        fetcher: any DocumentFetching = HTTPDocumentFetcher(),
        clock: any WallClock = SystemClock(),
        logger: Logger = Logger(label: "JWTAuth.JWKSCache")
    ) {
        self.configuration = configuration
        self.fetcher = fetcher
        self.clock = clock
        var logger = logger
        logger[metadataKey: "jwks.source"] = "\(configuration.source)"
        self.logger = logger
    }

    /// The keys currently cached, if any were ever fetched.
    public var currentKeys: KeySet? { state.withLock { $0.keys } }

    public func containsKey(withID keyID: String) -> Bool {
        state.withLock { $0.keys?[keyID] != nil }
    }

    public func keys(for algorithm: SignatureAlgorithm) async throws(BearerAuthError) -> [VerificationKey] {
        if state.withLock({ $0.keys }) == nil { await refresh() }
        guard let keys = state.withLock({ $0.keys }) else { throw .keysUnavailable }
        if clock.now >= state.withLock({ $0.freshUntil }) {
            // Stale: use what is cached, as `key(withID:)` does, and refresh in the background.
            state.withLock { state in if state.refresh == nil { state.refresh = makeRefreshTask() } }
        }
        return keys.all.filter { $0.algorithms.contains(algorithm) }
    }

    public func key(withID keyID: String) async throws(BearerAuthError) -> VerificationKey {
        let now = clock.now
        enum Plan {
            case found(VerificationKey)
            case wait(Task<Void, Never>)
            case giveUp(hasKeys: Bool)
        }
        let plan: Plan = state.withLock { state in
            if let key = state.keys?[keyID] {
                if now >= state.freshUntil, state.refresh == nil {
                    state.refresh = makeRefreshTask()
                }
                return .found(key)
            }
            // While the endpoint is failing, answer at once and let the refresh run in the background: a request
            // must not wait for a fetch that is likely to time out.
            let waits = !state.failing
            if let refresh = state.refresh { return waits ? .wait(refresh) : .giveUp(hasKeys: state.keys != nil) }
            if let last = state.lastForcedAttempt, now.timeIntervalSince(last) < configuration.forcedRefreshCooldown {
                return .giveUp(hasKeys: state.keys != nil)
            }
            // The first load is not a forced refresh; a failed one sets the cooldown in `performRefresh`.
            if state.keys != nil { state.lastForcedAttempt = now }
            let refresh = makeRefreshTask()
            state.refresh = refresh
            return waits ? .wait(refresh) : .giveUp(hasKeys: state.keys != nil)
        }
        switch plan {
        case .found(let key):
            return key
        case .giveUp(let hasKeys):
            throw hasKeys ? .unknownKey : .keysUnavailable
        case .wait(let refresh):
            await refresh.value
            let (key, hasKeys) = state.withLock { ($0.keys?[keyID], $0.keys != nil) }
            if let key { return key }
            throw hasKeys ? .unknownKey : .keysUnavailable
        }
    }

    /// Fetches the keys now (single-flight with any refresh already running), e.g. at start-up. Failures are logged
    /// and leave the cached keys in place.
    public func refresh() async {
        let refresh = state.withLock { state in
            if let refresh = state.refresh { return refresh }
            let refresh = makeRefreshTask()
            state.refresh = refresh
            return refresh
        }
        await refresh.value
    }

    /// Waits for a refresh that is running, if any (tests use this to observe background refreshes).
    func waitForRunningRefresh() async {
        await state.withLock { $0.refresh }?.value
    }

    /// Must be called with the state lock held; the task takes the lock only after it has fetched.
    private func makeRefreshTask() -> Task<Void, Never> {
        Task { await self.performRefresh() }
    }

    private func performRefresh() async {
        let started = clock.now
        do {
            let (keys, maxAge) = try await fetchKeySet()
            let lifetime = min(
                max(maxAge ?? configuration.defaultLifetime, configuration.minimumLifetime),
                configuration.maximumLifetime)
            let recovered = state.withLock { state in
                let recovered = state.failing
                state.keys = keys
                state.freshUntil = started.addingTimeInterval(lifetime)
                state.failing = false
                state.refresh = nil
                return recovered
            }
            Counter(label: "jwks_fetches_total", dimensions: [("outcome", "ok")]).increment()
            if recovered { logger.info("JWKS fetched again after failures; using the new keys") }
            logger.debug("JWKS refreshed", metadata: ["jwks.kids": "\(keys.keyIDs.sorted())"])
        } catch {
            let (firstFailure, hasKeys) = state.withLock { state in
                let first = !state.failing
                state.failing = true
                state.jwksURL = nil
                // Do not retry on every request: the next background attempt waits for the cooldown.
                state.freshUntil = started.addingTimeInterval(configuration.forcedRefreshCooldown)
                state.lastForcedAttempt = started
                state.refresh = nil
                return (first, state.keys != nil)
            }
            Counter(label: "jwks_fetches_total", dimensions: [("outcome", "failed")]).increment()
            let message: Logger.Message =
                hasKeys
                ? "JWKS refresh failed; keeping the cached keys until it recovers"
                : "JWKS fetch failed; tokens cannot be verified until it succeeds"
            if firstFailure {
                logger.error(message, metadata: ["error": "\(error)"])
            } else {
                logger.debug(message, metadata: ["error": "\(error)"])
            }
        }
    }

    private func fetchKeySet() async throws -> (KeySet, TimeInterval?) {
        let url = try await resolveJWKSURL()
        let document = try await fetcher.fetch(url)
        let keys = try await KeySet.parse(
            jwks: document.body, allowedAlgorithms: configuration.allowedAlgorithms, logger: logger)
        return (keys, document.maxAge)
    }

    private func resolveJWKSURL() async throws -> String {
        switch configuration.source {
        case .url(let url): return url
        case .wellKnown: return configuration.source.description
        case .discovery(let issuer):
            if let known = state.withLock({ $0.jwksURL }) { return known }
            let metadata = try await ProviderMetadata.discover(issuer: issuer, fetcher: fetcher)
            state.withLock { $0.jwksURL = metadata.jwksURI }
            return metadata.jwksURI
        }
    }
}
