import Foundation
import GRDB
import JWTAuth
import Synchronization
import Testing

@testable import McpGateway

@Suite("Gateway storage")
struct StorageTests {
    let now = Date(timeIntervalSince1970: 1_750_000_000)

    func temporaryStore() throws -> (SQLiteGatewayStore, String) {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("gateway-\(UUID().uuidString).sqlite")
            .path
        return (SQLiteGatewayStore(database: try GatewayDatabase.open(path: path)), path)
    }

    func seed(_ store: SQLiteGatewayStore, codeDigest: String = "code", refreshDigest: String? = nil) async throws
        -> Grant
    {
        let cipher = TokenCipher(secret: String(repeating: "k", count: 40))
        try await store.insert(
            client: RegisteredClient(
                id: "client", secretDigest: nil, authMethod: .none, name: "Test", uri: nil, logoURI: nil,
                redirectURIs: ["http://localhost/cb"], grantTypes: ["authorization_code", "refresh_token"],
                createdAt: now))
        let grant = Grant(
            id: "grant", clientID: "client", user: UserProfile(subject: "auth0|alice", name: "Alice", email: nil),
            scope: ["read:todos", "offline_access"], resource: "http://localhost:8788/mcp",
            upstream: UpstreamTokens(
                accessToken: try cipher.seal("upstream", context: "access:grant"), refreshToken: nil,
                expiresAt: now.addingTimeInterval(3600), scope: ["read:todos"]),
            createdAt: now, expiresAt: now.addingTimeInterval(86_400), revokedAt: nil, currentRefreshDigest: nil,
            previousRefreshDigest: nil)
        try await store.insert(
            grant: grant,
            code: AuthorizationCodeRecord(
                digest: codeDigest, grantID: "grant", clientID: "client", redirectURI: "http://localhost/cb",
                codeChallenge: "challenge", resource: nil, expiresAt: now.addingTimeInterval(60), redeemedAt: nil))
        return grant
    }

    func tokens(_ access: String, refresh: String?) -> IssuedTokens {
        IssuedTokens(
            access: AccessTokenRecord(
                digest: access, grantID: "grant", clientID: "client", scope: ["read:todos"],
                resource: "http://localhost:8788/mcp", expiresAt: now.addingTimeInterval(3600)),
            refreshDigest: refresh)
    }

    @Test func fiftyConcurrentRedemptionsOfOneCodeYieldExactlyOneSuccess() async throws {
        let (store, path) = try temporaryStore()
        defer { try? FileManager.default.removeItem(atPath: path) }
        _ = try await seed(store)
        let outcomes = await withTaskGroup(of: CodeRedemption?.self) { group in
            for index in 0..<50 {
                group.addTask {
                    try? await store.redeem(
                        codeDigest: "code", issuing: tokens("access-\(index)", refresh: nil), now: now)
                }
            }
            return await group.reduce(into: [CodeRedemption?]()) { $0.append($1) }
        }
        #expect(outcomes.filter { $0 == .redeemed }.count == 1)
        #expect(outcomes.filter { $0 == .replayed }.count == 49)
        // The replays revoked the grant and the one access token it produced.
        #expect(try await store.grant(id: "grant")?.revokedAt != nil)
        for index in 0..<50 { #expect(try await store.accessToken(digest: "access-\(index)", now: now) == nil) }
    }

    @Test func concurrentRefreshesFollowTheRotationRule() async throws {
        let (store, path) = try temporaryStore()
        defer { try? FileManager.default.removeItem(atPath: path) }
        _ = try await seed(store)
        #expect(try await store.redeem(codeDigest: "code", issuing: tokens("a0", refresh: "r0"), now: now) == .redeemed)

        // Twenty clients retry the same refresh at once: each succeeds (r0 stays usable while its successor is
        // unused), and only the last successor is current.
        let outcomes = await withTaskGroup(of: RefreshRotation?.self) { group in
            for index in 1...20 {
                group.addTask {
                    try? await store.rotate(
                        refreshDigest: "r0", grantID: "grant", issuing: tokens("a\(index)", refresh: "r\(index)"),
                        now: now)
                }
            }
            return await group.reduce(into: [RefreshRotation?]()) { $0.append($1) }
        }
        #expect(outcomes.allSatisfy { $0 == .rotated })
        let grant = try #require(try await store.grant(id: "grant"))
        #expect(grant.previousRefreshDigest == "r0")
        let current = try #require(grant.currentRefreshDigest)

        // Using the newest token rotates again; r0 is now older than the previous one and revokes the grant.
        #expect(
            try await store.rotate(
                refreshDigest: current, grantID: "grant", issuing: tokens("b1", refresh: "s1"), now: now) == .rotated)
        #expect(
            try await store.rotate(
                refreshDigest: "r0", grantID: "grant", issuing: tokens("b2", refresh: "s2"), now: now) == .reused)
        #expect(try await store.grant(id: "grant")?.revokedAt != nil)
        #expect(try await store.accessToken(digest: "b1", now: now) == nil)
        #expect(
            try await store.rotate(
                refreshDigest: "s1", grantID: "grant", issuing: tokens("b3", refresh: "s3"), now: now) == .inactive)
    }

    @Test func aDiscardedSuccessorRevokesTheGrant() async throws {
        let store = SQLiteGatewayStore(database: try GatewayDatabase.inMemory())
        _ = try await seed(store)
        _ = try await store.redeem(codeDigest: "code", issuing: tokens("a0", refresh: "r0"), now: now)
        #expect(
            try await store.rotate(
                refreshDigest: "r0", grantID: "grant", issuing: tokens("a1", refresh: "r1"), now: now) == .rotated)
        // The response carrying r1 was lost; the client retries with r0, and gets r2.
        #expect(
            try await store.rotate(
                refreshDigest: "r0", grantID: "grant", issuing: tokens("a2", refresh: "r2"), now: now) == .rotated)
        // r1 was never delivered; whoever presents it is not the client.
        #expect(
            try await store.rotate(
                refreshDigest: "r1", grantID: "grant", issuing: tokens("a3", refresh: "r3"), now: now) == .reused)
        #expect(try await store.grant(refreshDigest: "r1")?.id == "grant")
    }

    @Test func thePreviousTokenWorksOnlyWithinItsGrace() async throws {
        let store = SQLiteGatewayStore(database: try GatewayDatabase.inMemory())
        _ = try await seed(store)
        _ = try await store.redeem(codeDigest: "code", issuing: tokens("a0", refresh: "r0"), now: now)
        func rotate(_ presented: String, _ issued: String, at seconds: TimeInterval) async throws -> RefreshRotation {
            try await store.rotate(
                refreshDigest: presented, grantID: "grant", issuing: tokens("a-\(issued)", refresh: issued),
                now: now.addingTimeInterval(seconds), graceUntil: now.addingTimeInterval(seconds + 60))
        }
        #expect(try await rotate("r0", "r1", at: 0) == .rotated)
        // Retries with r0 inside the 60 s grace succeed, and do not push the grace's end back.
        #expect(try await rotate("r0", "r2", at: 30) == .rotated)
        #expect(try await rotate("r0", "r3", at: 60) == .rotated)
        #expect(try await store.grant(id: "grant")?.previousRefreshValidUntil == now.addingTimeInterval(60))
        // One second after the grace, r0 is a replayed token: the grant is revoked with everything it issued.
        #expect(try await rotate("r0", "r4", at: 61) == .reused)
        #expect(try await store.grant(id: "grant")?.revokedAt == now.addingTimeInterval(61))
        #expect(try await store.accessToken(digest: "a-r3", now: now.addingTimeInterval(61)) == nil)
        #expect(try await rotate("r3", "r5", at: 62) == .inactive)
    }

    @Test func aGraceOfZeroAcceptsNoLaterRetry() async throws {
        let store = SQLiteGatewayStore(database: try GatewayDatabase.inMemory())
        _ = try await seed(store)
        _ = try await store.redeem(codeDigest: "code", issuing: tokens("a0", refresh: "r0"), now: now)
        #expect(
            try await store.rotate(
                refreshDigest: "r0", grantID: "grant", issuing: tokens("a1", refresh: "r1"), now: now, graceUntil: now)
                == .rotated)
        #expect(
            try await store.rotate(
                refreshDigest: "r0", grantID: "grant", issuing: tokens("a2", refresh: "r2"),
                now: now.addingTimeInterval(1), graceUntil: now.addingTimeInterval(1)) == .reused)
    }

    @Test func registrationsThatNeverObtainedAGrantAreSweptAfterADay() async throws {
        let store = SQLiteGatewayStore(database: try GatewayDatabase.inMemory())
        _ = try await seed(store)  // "client" has a grant
        for (id, age) in [("idle-old", 86_401.0), ("idle-new", 3600.0)] {
            try await store.insert(
                client: RegisteredClient(
                    id: id, secretDigest: nil, authMethod: .none, name: nil, uri: nil, logoURI: nil,
                    redirectURIs: ["http://localhost/cb"], grantTypes: ["authorization_code"],
                    createdAt: now.addingTimeInterval(-age)))
        }
        #expect(try await store.sweep(now: now, unusedClientsBefore: now.addingTimeInterval(-86_400)) == 1)
        #expect(try await store.client(id: "idle-old") == nil)
        #expect(try await store.client(id: "idle-new") != nil)
        #expect(try await store.client(id: "client") != nil)
    }

    @Test func savingAnUnchangedClientWritesNothing() async throws {
        let (store, path) = try temporaryStore()
        defer { try? FileManager.default.removeItem(atPath: path) }
        _ = try await seed(store)
        let known = try #require(try await store.client(id: "client"))
        let changes = try await store.database.write { db in db.totalChangesCount }
        var again = known
        again.createdAt = now.addingTimeInterval(500)  // a fetch keeps the first createdAt anyway
        try await store.save(client: again)
        #expect(try await store.database.write { db in db.totalChangesCount } == changes)
        again.name = "Renamed"
        try await store.save(client: again)
        #expect(try await store.client(id: "client")?.name == "Renamed")
        #expect(try await store.client(id: "client")?.createdAt == known.createdAt)
    }

    @Test func dataSurvivesReopeningTheDatabase() async throws {
        let (store, path) = try temporaryStore()
        defer { try? FileManager.default.removeItem(atPath: path) }
        _ = try await seed(store)
        _ = try await store.redeem(codeDigest: "code", issuing: tokens("access", refresh: "refresh"), now: now)
        let reopened = SQLiteGatewayStore(database: try GatewayDatabase.open(path: path))
        #expect(try await reopened.client(id: "client")?.name == "Test")
        #expect(try await reopened.accessToken(digest: "access", now: now)?.grant.user.subject == "auth0|alice")
        #expect(try await reopened.grant(refreshDigest: "refresh")?.currentRefreshDigest == "refresh")
    }

    @Test func expiryFollowsTheInjectedClock() async throws {
        let store = SQLiteGatewayStore(database: try GatewayDatabase.inMemory())
        _ = try await seed(store)
        _ = try await store.redeem(codeDigest: "code", issuing: tokens("access", refresh: nil), now: now)
        #expect(try await store.accessToken(digest: "access", now: now.addingTimeInterval(3599)) != nil)
        #expect(try await store.accessToken(digest: "access", now: now.addingTimeInterval(3600)) == nil)
        // Once the grant expires, nothing it issued works, and the sweeper removes it.
        let later = now.addingTimeInterval(86_400)
        #expect(try await store.sweep(now: later, unusedClientsBefore: now.addingTimeInterval(-86_400)) > 0)
        #expect(try await store.grant(id: "grant") == nil)
        #expect(try await store.code(digest: "code") == nil)
    }

    @Test func pendingSignInsAreSingleUseAndExpire() async throws {
        let store = SQLiteGatewayStore(database: try GatewayDatabase.inMemory())
        let request = ClientAuthorizationRequest(
            clientID: "c", redirectURI: "http://localhost/cb", scope: ["read:todos"], state: nil, codeChallenge: "x",
            resource: nil)
        for key in ["one", "two"] {
            try await store.insert(
                pending: PendingAuthorization(
                    keyDigest: key, bindingDigest: "b", stage: .consent, request: request, csrfDigest: nil,
                    upstreamNonce: nil, upstreamVerifier: nil, expiresAt: now.addingTimeInterval(600)))
        }
        #expect(try await store.takePending(keyDigest: "one", now: now)?.request == request)
        #expect(try await store.takePending(keyDigest: "one", now: now) == nil)
        #expect(try await store.takePending(keyDigest: "two", now: now.addingTimeInterval(600)) == nil)
    }
}

@Suite("Upstream token encryption")
struct TokenCipherTests {
    @Test func roundTripAndTamperDetection() throws {
        let cipher = TokenCipher(secret: String(repeating: "a", count: 40))
        let sealed = try cipher.seal("upstream-access-token", context: "access:g1")
        #expect(try cipher.open(sealed, context: "access:g1") == "upstream-access-token")
        #expect(sealed.combined.range(of: Data("upstream-access-token".utf8)) == nil)
        var tampered = sealed
        tampered.combined[tampered.combined.count - 1] ^= 0x01
        #expect(throws: TokenCipher.Failure.tampered) { try cipher.open(tampered, context: "access:g1") }
        #expect(throws: TokenCipher.Failure.tampered) { try cipher.open(sealed, context: "access:g2") }
    }

    @Test func keysRotate() throws {
        let old = TokenCipher(secret: String(repeating: "o", count: 40))
        let sealedWithOld = try old.seal("token", context: "c")
        let rotated = TokenCipher(
            secret: String(repeating: "n", count: 40), previousSecrets: [String(repeating: "o", count: 40)])
        #expect(try rotated.open(sealedWithOld, context: "c") == "token")
        #expect(try rotated.seal("token", context: "c").keyID == rotated.current.id)
        #expect(rotated.current.id != old.current.id)
        let forgotten = TokenCipher(secret: String(repeating: "n", count: 40))
        #expect(throws: TokenCipher.Failure.unknownKey(old.current.id)) {
            try forgotten.open(sealedWithOld, context: "c")
        }
    }
}

@Suite("Access token cache")
struct AccessTokenCacheTests {
    let now = Date(timeIntervalSince1970: 1_750_000_000)

    @Test func cachedTokensNeverOutliveWhatEndsThem() async throws {
        let database = SQLiteGatewayStore(database: try GatewayDatabase.inMemory())
        let storage = StorageTests()
        _ = try await storage.seed(database)
        let cache = AccessTokenCache(wrapping: database, lifetime: 10)
        _ = try await cache.redeem(codeDigest: "code", issuing: storage.tokens("a1", refresh: "r1"), now: now)
        #expect(try await cache.accessToken(digest: "a1", now: now) != nil)

        // Revoked behind the cache's back (another instance): still answered until the entry's lifetime ends.
        try await database.revokeGrant(id: "grant", now: now)
        #expect(try await cache.accessToken(digest: "a1", now: now.addingTimeInterval(9)) != nil)
        #expect(try await cache.accessToken(digest: "a1", now: now.addingTimeInterval(10)) == nil)
    }

    @Test func writesThroughTheCacheTakeEffectAtOnce() async throws {
        for write in ["revoke", "delete", "upstream", "reuse"] {
            let database = SQLiteGatewayStore(database: try GatewayDatabase.inMemory())
            let storage = StorageTests()
            let grant = try await storage.seed(database)
            let cache = AccessTokenCache(wrapping: database)
            _ = try await cache.redeem(codeDigest: "code", issuing: storage.tokens("a1", refresh: "r1"), now: now)
            let cached = try #require(try await cache.accessToken(digest: "a1", now: now))
            #expect(cached.grant.upstream.expiresAt == grant.upstream.expiresAt)
            switch write {
            case "revoke":
                try await cache.revokeGrant(id: "grant", now: now)
                #expect(try await cache.accessToken(digest: "a1", now: now) == nil, "\(write)")
            case "delete":
                #expect(try await cache.deleteAccessToken(digest: "a1", clientID: "client"))
                #expect(try await cache.accessToken(digest: "a1", now: now) == nil, "\(write)")
            case "upstream":
                var upstream = grant.upstream
                upstream.expiresAt = now.addingTimeInterval(99_999)
                try await cache.updateUpstream(grantID: "grant", tokens: upstream)
                let fresh = try await cache.accessToken(digest: "a1", now: now)
                #expect(fresh?.grant.upstream.expiresAt == now.addingTimeInterval(99_999), "\(write)")
            default:
                _ = try await cache.rotate(
                    refreshDigest: "r1", grantID: "grant", issuing: storage.tokens("a2", refresh: "r2"), now: now)
                #expect(
                    try await cache.rotate(
                        refreshDigest: "stale", grantID: "grant", issuing: storage.tokens("a3", refresh: "r3"), now: now
                    ) == .reused)
                #expect(try await cache.accessToken(digest: "a1", now: now) == nil, "\(write)")
            }
        }
    }

    @Test func aLookupThatReadBeforeARevocationCannotPutTheTokenBack() async throws {
        let database = SQLiteGatewayStore(database: try GatewayDatabase.inMemory())
        let storage = StorageTests()
        _ = try await storage.seed(database)
        _ = try await database.redeem(codeDigest: "code", issuing: storage.tokens("a1", refresh: "r1"), now: now)
        let paused = PausingStore(wrapping: database)
        let cache = AccessTokenCache(wrapping: paused, lifetime: 10)

        // A lookup reads the still-active grant from the database, then stalls before it caches the answer...
        let lookup = Task { try await cache.accessToken(digest: "a1", now: now) }
        await paused.readHappened()
        // ... while the grant is revoked through the cache, and the revocation commits.
        try await cache.revokeGrant(id: "grant", now: now)
        paused.release()
        #expect(try await lookup.value != nil)  // it read before the revocation: that answer is its own
        // The stale read must not have been cached: the next lookup sees the revocation.
        #expect(try await cache.accessToken(digest: "a1", now: now.addingTimeInterval(1)) == nil)
    }
}

/// Forwards to a store; its first access-token read completes in the database, then waits for ``release()``.
final class PausingStore: GatewayStore, @unchecked Sendable {
    let store: any GatewayStore
    private let (reads, readContinuation) = AsyncStream<Void>.makeStream()
    private let (gate, gateContinuation) = AsyncStream<Void>.makeStream()
    private let pauses = Mutex(true)

    init(wrapping store: any GatewayStore) { self.store = store }

    func readHappened() async { for await _ in reads { return } }
    func release() { gateContinuation.yield() }

    func accessToken(digest: String, now: Date) async throws -> (token: AccessTokenRecord, grant: Grant)? {
        let found = try await store.accessToken(digest: digest, now: now)
        let first = pauses.withLock { pauses in
            let first = pauses
            pauses = false
            return first
        }
        guard first else { return found }
        readContinuation.yield()
        for await _ in gate { break }
        return found
    }

    func insert(client: RegisteredClient) async throws { try await store.insert(client: client) }
    func save(client: RegisteredClient) async throws { try await store.save(client: client) }
    func client(id: String) async throws -> RegisteredClient? { try await store.client(id: id) }
    func insert(pending: PendingAuthorization) async throws { try await store.insert(pending: pending) }
    func takePending(keyDigest: String, now: Date) async throws -> PendingAuthorization? {
        try await store.takePending(keyDigest: keyDigest, now: now)
    }
    func insert(grant: Grant, code: AuthorizationCodeRecord) async throws {
        try await store.insert(grant: grant, code: code)
    }
    func code(digest: String) async throws -> AuthorizationCodeRecord? { try await store.code(digest: digest) }
    func redeem(codeDigest: String, issuing tokens: IssuedTokens, now: Date) async throws -> CodeRedemption {
        try await store.redeem(codeDigest: codeDigest, issuing: tokens, now: now)
    }
    func grant(id: String) async throws -> Grant? { try await store.grant(id: id) }
    func grant(refreshDigest: String) async throws -> Grant? { try await store.grant(refreshDigest: refreshDigest) }
    func rotate(refreshDigest: String, grantID: String, issuing tokens: IssuedTokens, now: Date, graceUntil: Date)
        async throws -> RefreshRotation
    {
        try await store.rotate(
            refreshDigest: refreshDigest, grantID: grantID, issuing: tokens, now: now, graceUntil: graceUntil)
    }
    func deleteAccessToken(digest: String, clientID: String) async throws -> Bool {
        try await store.deleteAccessToken(digest: digest, clientID: clientID)
    }
    func revokeGrant(id: String, now: Date) async throws { try await store.revokeGrant(id: id, now: now) }
    func updateUpstream(grantID: String, tokens: UpstreamTokens) async throws {
        try await store.updateUpstream(grantID: grantID, tokens: tokens)
    }
    func sweep(now: Date, unusedClientsBefore: Date) async throws -> Int {
        try await store.sweep(now: now, unusedClientsBefore: unusedClientsBefore)
    }
    func replaceUpstream(grantID: String, expected: UpstreamTokens, with tokens: UpstreamTokens) async throws -> Bool {
        try await store.replaceUpstream(grantID: grantID, expected: expected, with: tokens)
    }
    func activeGrants(now: Date) async throws -> [Grant] { try await store.activeGrants(now: now) }
    func sealingKeyIDs(now: Date) async throws -> Set<String> { try await store.sealingKeyIDs(now: now) }
}

extension GatewayStore {
    /// A rotation with the default 60-second grace, for tests about something else.
    func rotate(refreshDigest: String, grantID: String, issuing tokens: IssuedTokens, now: Date) async throws
        -> RefreshRotation
    {
        try await rotate(
            refreshDigest: refreshDigest, grantID: grantID, issuing: tokens, now: now,
            graceUntil: now.addingTimeInterval(60))
    }
}
