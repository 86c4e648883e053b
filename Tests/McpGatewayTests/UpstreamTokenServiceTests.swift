import Foundation
import JSON
import JWTAuth
import Logging
import Resilience
import ServiceSupport
import TestSupport
import Testing

@testable import McpGateway

@Suite("Upstream token lifecycle")
struct UpstreamTokenServiceTests {
    let clock = ManualClock(Date(timeIntervalSince1970: 1_750_000_000))
    let cipher = TokenCipher(secret: String(repeating: "u", count: 40))

    func setUp(
        expiresIn: TimeInterval, refreshToken: String? = "upstream-refresh", serviceCipher: TokenCipher? = nil
    ) async throws
        -> (GatewayStorage, FakeProvider, UpstreamTokenService)
    {
        let store = GatewayStorage.sqlite(try SQLiteSchema.inMemory())
        let provider = FakeProvider(key: try await RSASigningKey.generate(), clock: clock)
        try await store.clients.insert(
            client: RegisteredClient(
                id: "c", secretDigest: nil, authMethod: .none, name: nil, uri: nil, logoURI: nil,
                redirectURIs: ["http://localhost/cb"],
                grantTypes: ["authorization_code"], createdAt: clock.now))
        let vault = UpstreamTokenVault(cipher: cipher)
        let upstream = try vault.seal(
            UpstreamTokenResponse(json: [
                "access_token": "old-access", "expires_in": .integer(Int64(expiresIn)),
                "refresh_token": refreshToken.map(JSONValue.string) ?? .null,
            ]),
            grantID: "g", now: clock.now, previous: nil)
        try await store.codes.insert(
            grant: Grant(
                id: "g", clientID: "c", user: UserProfile(subject: "auth0|alice"), scope: ["read:todos"],
                resource: "r", upstream: upstream, createdAt: clock.now,
                expiresAt: clock.now.addingTimeInterval(86_400),
                revokedAt: nil, currentRefreshDigest: nil, previousRefreshDigest: nil),
            code: AuthorizationCodeRecord(
                digest: "x", grantID: "g", clientID: "c", redirectURI: "", codeChallenge: "",
                resource: nil, expiresAt: clock.now, redeemedAt: nil))
        let service = makeService(store, provider, cipher: serviceCipher ?? cipher)
        return (store, provider, service)
    }

    /// The service of one gateway instance; several may share a store.
    func makeService(
        _ store: GatewayStorage, _ provider: FakeProvider, cipher: TokenCipher,
        upstreamTokens: (any UpstreamTokenStore)? = nil,
        timeouts: UpstreamTokenService.Timeouts = .init(),
        providerTimeouts: (request: Duration, refresh: Duration) = (.seconds(10), .seconds(12)),
        waiting: any WaitingClock = SystemWaitingClock()
    ) -> UpstreamTokenService {
        let upstreamProvider = UpstreamProvider(
            configuration: UpstreamConfiguration(
                issuer: FakeProvider.issuer, clientID: FakeProvider.clientID, clientSecret: FakeProvider.clientSecret,
                endpoints: .discovery, audience: FakeProvider.audience, scope: ["openid"], grantedScopes: nil,
                displayName: "Fake"),
            callbackURL: "http://localhost:8788/callback", http: provider, fetcher: provider, clock: clock,
            timeouts: providerTimeouts, logger: Logger(label: "test"))
        return UpstreamTokenService(
            grants: store.grants, upstreamTokens: upstreamTokens ?? store.upstreamTokens, refresher: upstreamProvider,
            cipher: cipher, clock: clock, logger: Logger(label: "test"), timeouts: timeouts, waiting: waiting)
    }

    @Test(arguments: [3600.0, 30.0])
    func aMissingKeyKeepsTheGrant(expiresIn: TimeInterval) async throws {
        // The gateway restarted with a new key and without the old one (which the start-up check refuses; a row
        // written by another instance can still get here).
        let newKey = TokenCipher(secret: String(repeating: "n", count: 40))
        let (store, provider, service) = try await setUp(expiresIn: expiresIn, serviceCipher: newKey)
        await #expect(throws: UpstreamAccessError.credentialsUnreadable) { try await service.accessToken(grantID: "g") }
        #expect(try await store.grants.grant(id: "g")?.revokedAt == nil)  // kept
        #expect(provider.snapshot.refreshCount == 0)  // the provider's refresh token was not spent either
        // With the old key back, the same grant works.
        let (_, _, fixed) = try await setUp(
            expiresIn: 3600,
            serviceCipher: TokenCipher(
                secret: String(repeating: "n", count: 40), previousSecrets: [String(repeating: "u", count: 40)]))
        #expect(try await fixed.accessToken(grantID: "g") == "old-access")
    }

    @Test func aKeptRefreshTokenIsSealedAgainUnderTheCurrentKey() throws {
        let old = cipher
        let rotated = TokenCipher(
            secret: String(repeating: "n", count: 40), previousSecrets: [String(repeating: "u", count: 40)])
        let first = try UpstreamTokenVault(cipher: old).seal(
            UpstreamTokenResponse(json: ["access_token": "a1", "refresh_token": "r1", "expires_in": 60]), grantID: "g",
            now: clock.now, previous: nil)
        // The provider does not rotate refresh tokens: the response has none, and the kept one moves to the new key.
        let second = try UpstreamTokenVault(cipher: rotated).seal(
            UpstreamTokenResponse(json: ["access_token": "a2", "expires_in": 60]), grantID: "g", now: clock.now,
            previous: first)
        #expect(UpstreamTokenVault.keyIDs(of: second) == [rotated.current.id])
        #expect(try rotated.open(try #require(second.refreshToken), context: "refresh:g") == "r1")
    }

    @Test func resealMovesEveryGrantToTheCurrentKeySoTheOldOneCanGo() async throws {
        let (store, _, _) = try await setUp(expiresIn: 3600)
        let newSecret = String(repeating: "n", count: 40)
        let rotated = TokenCipher(secret: newSecret, previousSecrets: [String(repeating: "u", count: 40)])
        let onlyNew = TokenCipher(secret: newSecret)
        // Before: the start-up check refuses the new key alone.
        await #expect(throws: ConfigurationError.self) {
            try await UpstreamTokenResealer.checkKeys(
                upstreamTokens: store.upstreamTokens, cipher: onlyNew, now: clock.now)
        }
        try await UpstreamTokenResealer.checkKeys(upstreamTokens: store.upstreamTokens, cipher: rotated, now: clock.now)
        let report = try await UpstreamTokenResealer(
            grants: store.grants, upstreamTokens: store.upstreamTokens, cipher: rotated
        ).reseal(now: clock.now)
        #expect(report == .init(resealed: 1))
        #expect(
            try await UpstreamTokenResealer(grants: store.grants, upstreamTokens: store.upstreamTokens, cipher: rotated)
                .reseal(now: clock.now) == .init(current: 1))
        // After: the new key alone opens everything, and start-up accepts it.
        try await UpstreamTokenResealer.checkKeys(upstreamTokens: store.upstreamTokens, cipher: onlyNew, now: clock.now)
        let grant = try #require(try await store.grants.grant(id: "g"))
        #expect(try UpstreamTokenVault(cipher: onlyNew).accessToken(of: grant) == "old-access")
        #expect(try UpstreamTokenVault(cipher: onlyNew).refreshToken(of: grant) == "upstream-refresh")
        // A key nobody has: reported, left alone.
        let stranger = TokenCipher(secret: String(repeating: "z", count: 40))
        let unreadable = try await UpstreamTokenResealer(
            grants: store.grants, upstreamTokens: store.upstreamTokens, cipher: stranger
        ).reseal(now: clock.now)
        #expect(unreadable.unreadable == [onlyNew.current.id: 1])
    }

    @Test func aFreshTokenIsUsedAsIs() async throws {
        let (_, provider, service) = try await setUp(expiresIn: 3600)
        #expect(try await service.accessToken(grantID: "g") == "old-access")
        #expect(provider.snapshot.refreshCount == 0)
    }

    @Test func tenConcurrentCallsCauseOneRefresh() async throws {
        let (store, provider, service) = try await setUp(expiresIn: 3600)
        clock.advance(by: 3541)  // the token expires within a minute
        let tokens = await withTaskGroup(of: String?.self) { group in
            for _ in 0..<10 { group.addTask { try? await service.accessToken(grantID: "g") } }
            return await group.reduce(into: [String?]()) { $0.append($1) }
        }
        #expect(provider.snapshot.refreshCount == 1)
        #expect(Set(tokens.compactMap { $0 }).count == 1)
        #expect(tokens.allSatisfy { $0 != nil && $0 != "old-access" })
        // The new tokens were stored, encrypted: the next call needs no refresh.
        let grant = try #require(try await store.grants.grant(id: "g"))
        #expect(try #require(grant.upstream).expiresAt > clock.now.addingTimeInterval(3000))
        #expect(try await service.accessToken(grantID: "g") == tokens.first!)
        #expect(provider.snapshot.refreshCount == 1)
    }

    @Test func twoInstancesRefreshingOneGrantCauseOneRefresh() async throws {
        let (store, provider, first) = try await setUp(expiresIn: 30)
        provider.update { $0.refreshDelay = .milliseconds(300) }
        // A second gateway instance on the same database: its own single-flight table, the same grant row.
        let second = makeService(store, provider, cipher: cipher)
        let tokens = await withTaskGroup(of: String?.self) { group in
            for index in 0..<10 {
                group.addTask { try? await (index % 2 == 0 ? first : second).accessToken(grantID: "g") }
            }
            return await group.reduce(into: [String?]()) { $0.append($1) }
        }
        #expect(provider.snapshot.refreshCount == 1)
        #expect(tokens.allSatisfy { $0 != nil && $0 != "old-access" })
        #expect(Set(tokens).count == 1)
        let upstream = try #require(try await store.grants.grant(id: "g")?.upstream)
        #expect(upstream.refreshLeaseUntil == nil && upstream.refreshStartedAt == nil)
    }

    @Test func aLeaseLeftByAStoppedInstanceLapses() async throws {
        let (store, provider, service) = try await setUp(expiresIn: 30)
        var held = try #require(try await store.grants.grant(id: "g")?.upstream)
        held.refreshStartedAt = clock.now
        held.refreshLeaseUntil = clock.now.addingTimeInterval(TimeInterval(service.timeouts.lease.wholeSecondsRoundedUp))
        try await store.upstreamTokens.updateUpstream(grantID: "g", tokens: held)
        clock.advance(by: TimeInterval(service.timeouts.lease.wholeSecondsRoundedUp) + 1)
        #expect(try await service.accessToken(grantID: "g") != "old-access")
        #expect(provider.snapshot.refreshCount == 1)
    }

    /// Another instance's lease is waited out for the lease's length on this instance's own monotonic clock, however
    /// far ahead the clock that wrote it runs: here it says an hour, and the refresh goes ahead after the lease
    /// (16 s), waited on a clock the test moves.
    @Test func aLeaseFromAClockFarAheadIsWaitedOutForTheLeaseOnly() async throws {
        let (store, provider, _) = try await setUp(expiresIn: 30)
        let waiting = ManualWaitingClock()
        let service = makeService(store, provider, cipher: cipher, waiting: waiting)
        var held = try #require(try await store.grants.grant(id: "g")?.upstream)
        held.refreshStartedAt = clock.now
        held.refreshLeaseUntil = clock.now.addingTimeInterval(3600)
        try await store.upstreamTokens.updateUpstream(grantID: "g", tokens: held)
        #expect(try await service.accessToken(grantID: "g") != "old-access")
        #expect(provider.snapshot.refreshCount == 1)
        #expect(waiting.waited >= service.timeouts.lease)
        #expect(waiting.waited < service.timeouts.lease + .seconds(1))
    }

    @Test func aFailedRefreshReleasesItsLease() async throws {
        let (store, provider, service) = try await setUp(expiresIn: 30)
        // A clock with a fraction of a second: what SQLite's JSON gives back must still compare equal.
        clock.advance(by: 0.123_456_7)
        provider.update { $0.refreshBehaviour = .unreachable }
        await #expect(throws: UpstreamAccessError.self) { try await service.accessToken(grantID: "g") }
        let upstream = try #require(try await store.grants.grant(id: "g")?.upstream)
        #expect(
            upstream.refreshStartedAt == Date(timeIntervalSince1970: clock.now.timeIntervalSince1970.rounded(.down)))
        #expect(upstream.refreshLeaseUntil == nil)
        // So the next call tries again at once.
        provider.update { $0.refreshBehaviour = .succeed }
        #expect(try await service.accessToken(grantID: "g") != "old-access")
    }

    @Test func aRefusedRefreshRevokesTheGrant() async throws {
        let (store, provider, service) = try await setUp(expiresIn: 30)
        provider.update { $0.refreshBehaviour = .invalidGrant }
        await #expect(throws: UpstreamAccessError.signInRequired) { try await service.accessToken(grantID: "g") }
        #expect(try await store.grants.grant(id: "g")?.revokedAt != nil)
    }

    @Test func aRefreshIsRecordedBeforeTheProviderIsCalledAndClearedAfter() async throws {
        let (store, provider, service) = try await setUp(expiresIn: 30)
        // The provider may have received (and spent) the token when the answer is lost: the attempt stays recorded.
        provider.update { $0.refreshBehaviour = .unreachable }
        await #expect(throws: UpstreamAccessError.self) { try await service.accessToken(grantID: "g") }
        #expect(try await store.grants.grant(id: "g")?.upstream?.refreshStartedAt == clock.now)
        // The next attempt succeeds: the new tokens carry no marker.
        provider.update { $0.refreshBehaviour = .succeed }
        clock.advance(by: 1)
        _ = try await service.accessToken(grantID: "g")
        let grant = try #require(try await store.grants.grant(id: "g"))
        #expect(grant.upstream?.refreshStartedAt == nil)
        #expect(grant.revokedAt == nil)
    }

    @Test func aRefusalAfterAnInterruptedRefreshEndsTheSignInWithAReason() async throws {
        let (store, provider, service) = try await setUp(expiresIn: 30)
        // As if the gateway had died during a refresh: the marker is there, the tokens are the old ones.
        var interrupted = try #require(try await store.grants.grant(id: "g")?.upstream)
        interrupted.refreshStartedAt = clock.now.addingTimeInterval(-5)
        try await store.upstreamTokens.updateUpstream(grantID: "g", tokens: interrupted)
        provider.update { $0.refreshBehaviour = .invalidGrant }
        await #expect(throws: UpstreamAccessError.signInRequired) { try await service.accessToken(grantID: "g") }
        #expect(try await store.grants.grant(id: "g")?.revokedAt != nil)
    }

    @Test func anUnreachableProviderIsTemporaryAndKeepsTheGrant() async throws {
        let (store, provider, service) = try await setUp(expiresIn: 30)
        provider.update { $0.refreshBehaviour = .unreachable }
        let error = await #expect(throws: UpstreamAccessError.self) { try await service.accessToken(grantID: "g") }
        guard case .providerUnavailable = error else {
            Issue.record("expected providerUnavailable, got \(String(describing: error))")
            return
        }
        #expect(try await store.grants.grant(id: "g")?.revokedAt == nil)
    }

    @Test func withoutARefreshTokenTheUserMustSignInAgain() async throws {
        let (store, _, service) = try await setUp(expiresIn: 30, refreshToken: nil)
        await #expect(throws: UpstreamAccessError.signInRequired) { try await service.accessToken(grantID: "g") }
        #expect(try await store.grants.grant(id: "g")?.revokedAt != nil)
    }
}

/// The faults of issue 17: a refresh that outlives its callers, a provider that never answers, a database that fails
/// between the provider's answer and storing it. Only the provider's refusal ends a grant, and no request waits for
/// ever.
extension UpstreamTokenServiceTests {
    /// Polls until `condition` holds, for up to `limit`.
    func eventually(within limit: Duration = .seconds(10), _ condition: () async throws -> Bool) async rethrows -> Bool {
        let start = ContinuousClock.now
        while ContinuousClock.now - start < limit {
            if try await condition() { return true }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return try await condition()
    }

    @Test func aSlowRefreshOutlivesTheCallsThatGaveUpAndIsStored() async throws {
        let (store, provider, _) = try await setUp(expiresIn: 30)
        let service = makeService(
            store, provider, cipher: cipher, timeouts: .init(wait: .milliseconds(200), refresh: .seconds(8)),
            providerTimeouts: (.seconds(8), .seconds(8)))
        // The provider answers after the caller's wait, within the refresh's own deadline.
        provider.update { $0.refreshDelay = .seconds(4) }
        let started = ContinuousClock.now
        let error = await #expect(throws: UpstreamAccessError.self) { try await service.accessToken(grantID: "g") }
        #expect(ContinuousClock.now - started < .seconds(3), "the caller waited for the provider")
        guard case .providerUnavailable = error else {
            Issue.record("expected providerUnavailable, got \(String(describing: error))")
            return
        }
        // The refresh went on without its caller, and stored what the provider answered.
        #expect(try await eventually { !service.isRefreshing("g") })
        let stored = try #require(try await store.grants.grant(id: "g")?.upstream)
        #expect(stored.expiresAt > clock.now.addingTimeInterval(3000))
        #expect(stored.refreshLeaseUntil == nil && stored.refreshStartedAt == nil)
        // The next call uses it: the rotated refresh token is never sent again.
        provider.update { $0.refreshDelay = .zero }
        #expect(try await service.accessToken(grantID: "g") != "old-access")
        #expect(provider.snapshot.refreshCount == 1)
    }

    @Test func aRefreshTheProviderNeverAnswersEndsAtItsDeadlineAndTheNextCallTriesAgain() async throws {
        let (store, provider, _) = try await setUp(expiresIn: 30)
        let service = makeService(
            store, provider, cipher: cipher, timeouts: .init(wait: .milliseconds(300), refresh: .seconds(1)),
            providerTimeouts: (.milliseconds(300), .seconds(1)))
        provider.update { $0.refreshBehaviour = .hang }
        defer { provider.releaseHungRefreshes() }
        // Twenty calls at once: one refresh, every call answered within its wait.
        let started = ContinuousClock.now
        let outcomes = await withTaskGroup(of: Bool.self) { group in
            for _ in 0..<20 { group.addTask { (try? await service.accessToken(grantID: "g")) != nil } }
            return await group.reduce(into: [Bool]()) { $0.append($1) }
        }
        #expect(outcomes.count == 20 && outcomes.allSatisfy { !$0 })
        #expect(ContinuousClock.now - started < .seconds(4))
        #expect(provider.snapshot.refreshCount == 1)
        // The refresh ends at its deadline although the provider never answered, and keeps the grant, marked as
        // interrupted (the background retry may have taken it again since).
        #expect(try await eventually { !service.isRefreshing("g") })
        let upstream = try #require(try await store.grants.grant(id: "g")?.upstream)
        #expect(upstream.refreshStartedAt != nil)
        #expect(try await store.grants.grant(id: "g")?.revokedAt == nil)
        // The provider is back: the same refresh token is sent again (within the provider's reuse interval), by the
        // next call or the background retry, and succeeds.
        provider.update { $0.refreshBehaviour = .succeed }
        provider.releaseHungRefreshes()
        #expect(
            try await eventually(within: .seconds(20)) {
                let token = try? await service.accessToken(grantID: "g")
                return token != nil && token != "old-access"
            })
        let sent = provider.snapshot.refreshTokens
        #expect(sent.count >= 2 && sent.allSatisfy { $0 == "upstream-refresh" }, "\(sent)")
    }

    @Test func anInterruptedRefreshIsRetriedWithoutWaitingForTheUsersNextCall() async throws {
        let (store, provider, _) = try await setUp(expiresIn: 30)
        let service = makeService(
            store, provider, cipher: cipher, timeouts: .init(wait: .milliseconds(300), refresh: .milliseconds(500)),
            providerTimeouts: (.milliseconds(300), .milliseconds(500)))
        // The answer to the one refresh the user's call causes is lost; the user then makes no call at all.
        provider.update { $0.refreshBehaviour = .hang }
        defer { provider.releaseHungRefreshes() }
        await #expect(throws: UpstreamAccessError.self) { try await service.accessToken(grantID: "g") }
        provider.update { $0.refreshBehaviour = .succeed }
        // Within a few seconds, well inside a provider's reuse interval, the gateway has sent the same refresh token
        // again by itself, and stored the answer.
        #expect(
            try await eventually(within: .seconds(8)) {
                (try await store.grants.grant(id: "g")?.upstream?.expiresAt ?? .distantPast)
                    > clock.now.addingTimeInterval(3000)
            })
        #expect(provider.snapshot.refreshTokens.allSatisfy { $0 == "upstream-refresh" })
        #expect(try await store.grants.grant(id: "g")?.upstream?.refreshStartedAt == nil)
    }

    @Test func aWaitingInstanceWaitsInFullForALeaseAnotherInstanceTookMeanwhile() async throws {
        let (store, provider, _) = try await setUp(expiresIn: 30)
        let service = makeService(
            store, provider, cipher: cipher, timeouts: .init(wait: .seconds(5), refresh: .seconds(1)))
        // A lease that lapses soon, then another instance's fresh one: this instance must not take over the second.
        var held = try #require(try await store.grants.grant(id: "g")?.upstream)
        held.refreshStartedAt = clock.now
        held.refreshLeaseUntil = clock.now.addingTimeInterval(3600)
        try await store.upstreamTokens.updateUpstream(grantID: "g", tokens: held)
        let call = Task { try await service.accessToken(grantID: "g") }
        try await Task.sleep(for: .milliseconds(1500))  // most of this instance's budget for the first lease
        var second = held
        second.refreshStartedAt = clock.now.addingTimeInterval(1)
        second.refreshLeaseUntil = clock.now.addingTimeInterval(7200)
        try await store.upstreamTokens.updateUpstream(grantID: "g", tokens: second)
        try await Task.sleep(for: .milliseconds(3500))  // past the first budget: still waiting for the second
        #expect(provider.snapshot.refreshCount == 0)
        call.cancel()
        _ = await call.result
    }

    @Test(arguments: [FakeProvider.RefreshBehaviour.unreachable, .serverError, .hang])
    func onlyTheProvidersRefusalEndsAGrant(fault: FakeProvider.RefreshBehaviour) async throws {
        let (store, provider, _) = try await setUp(expiresIn: 30)
        let service = makeService(
            store, provider, cipher: cipher, timeouts: .init(wait: .milliseconds(300), refresh: .milliseconds(500)),
            providerTimeouts: (.milliseconds(300), .milliseconds(500)))
        provider.update { $0.refreshBehaviour = fault }
        defer { provider.releaseHungRefreshes() }
        for _ in 0..<3 {
            await #expect(throws: UpstreamAccessError.self) { try await service.accessToken(grantID: "g") }
            #expect(try await eventually { !service.isRefreshing("g") })
        }
        #expect(try await store.grants.grant(id: "g")?.revokedAt == nil)
        // The provider refuses: the next refresh (a call's, or the background retry a failure started) ends the grant.
        provider.update { $0.refreshBehaviour = .invalidGrant }
        provider.releaseHungRefreshes()
        #expect(
            try await eventually {
                do { _ = try await service.accessToken(grantID: "g") } catch UpstreamAccessError.signInRequired {
                    return true
                } catch {}
                return false
            })
        #expect(try await store.grants.grant(id: "g")?.revokedAt != nil)
    }

    @Test func anAnswerTheDatabaseDidNotTakeIsUsedAndStoredOnceItAnswers() async throws {
        let (store, provider, _) = try await setUp(expiresIn: 30)
        let flaky = FlakyUpstreamTokenStore(wrapping: store.upstreamTokens)
        let service = makeService(store, provider, cipher: cipher, upstreamTokens: flaky)
        // The lease is taken; then the database stops answering, before the provider's answer can be stored.
        flaky.failAfter(replacements: 1)
        let token = try await service.accessToken(grantID: "g")
        #expect(token != "old-access")  // the call goes on with the new token
        #expect(try await store.grants.grant(id: "g")?.upstream?.expiresAt ?? .distantPast < clock.now.addingTimeInterval(60))
        // Meanwhile this instance keeps using it, without spending the refresh token again.
        #expect(try await service.accessToken(grantID: "g") == token)
        #expect(provider.snapshot.refreshCount == 1)
        // The database is back: the kept answer is stored in the background.
        flaky.recover()
        #expect(
            try await eventually {
                (try await store.grants.grant(id: "g")?.upstream?.expiresAt ?? .distantPast)
                    > clock.now.addingTimeInterval(3000)
            })
        #expect(provider.snapshot.refreshCount == 1)
        #expect(try await store.grants.grant(id: "g")?.revokedAt == nil)
    }
}

/// An upstream-token store that stops answering (``DependencyUnavailable``) after a number of replacements, until it
/// recovers: a database that fails in the middle of a refresh.
final class FlakyUpstreamTokenStore: UpstreamTokenStore, @unchecked Sendable {
    private let store: any UpstreamTokenStore
    private let lock = NSLock()
    private var remaining: Int? = nil

    init(wrapping store: any UpstreamTokenStore) { self.store = store }

    /// Lets `replacements` more succeed, then fails every call.
    func failAfter(replacements: Int) { lock.withLock { remaining = replacements } }
    func recover() { lock.withLock { remaining = nil } }

    private func check() throws {
        try lock.withLock {
            guard let left = remaining else { return }
            if left <= 0 { throw DependencyUnavailable("the database", detail: "test: the database is down") }
            remaining = left - 1
        }
    }

    func updateUpstream(grantID: String, tokens: UpstreamTokens) async throws {
        try check()
        try await store.updateUpstream(grantID: grantID, tokens: tokens)
    }

    func replaceUpstream(grantID: String, expected: UpstreamTokens, with tokens: UpstreamTokens) async throws -> Bool {
        try check()
        return try await store.replaceUpstream(grantID: grantID, expected: expected, with: tokens)
    }

    func sealingKeyIDs(now: Date) async throws -> Set<String> {
        try check()
        return try await store.sealingKeyIDs(now: now)
    }
}
