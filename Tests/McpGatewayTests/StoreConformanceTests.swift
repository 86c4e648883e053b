import Foundation
import GRDB
import JWTAuth
import Synchronization
import Testing

@testable import McpGateway

/// Rows the conformance tests start from: a client, and a grant with its authorization code.
struct StoreFixture {
    let now = Date(timeIntervalSince1970: 1_750_000_000)

    func client(_ id: String = "client", createdAt: Date? = nil) -> RegisteredClient {
        RegisteredClient(
            id: id, secretDigest: nil, authMethod: .none, name: "Test", uri: nil, logoURI: nil,
            redirectURIs: ["http://localhost/cb"], grantTypes: ["authorization_code", "refresh_token"],
            createdAt: createdAt ?? now)
    }

    func grant(_ id: String = "grant", client: String = "client", subject: String = "auth0|alice") throws -> Grant {
        let cipher = TokenCipher(secret: String(repeating: "k", count: 40))
        return Grant(
            id: id, clientID: client, user: UserProfile(subject: subject, name: "Alice", email: nil),
            scope: ["read:todos", "offline_access"], resource: "http://localhost:8788/mcp",
            upstream: UpstreamTokens(
                accessToken: try cipher.seal("upstream", context: "access:\(id)"), refreshToken: nil,
                expiresAt: now.addingTimeInterval(3600), scope: ["read:todos"]),
            createdAt: now, expiresAt: now.addingTimeInterval(86_400), revokedAt: nil, currentRefreshDigest: nil,
            previousRefreshDigest: nil)
    }

    func code(_ digest: String = "code", grant: String = "grant", client: String = "client") -> AuthorizationCodeRecord
    {
        AuthorizationCodeRecord(
            digest: digest, grantID: grant, clientID: client, redirectURI: "http://localhost/cb",
            codeChallenge: "challenge", resource: nil, expiresAt: now.addingTimeInterval(60), redeemedAt: nil)
    }

    @discardableResult
    func seed(_ storage: GatewayStorage, codeDigest: String = "code") async throws -> Grant {
        try await storage.clients.insert(client: client())
        let grant = try grant()
        try await storage.codes.insert(grant: grant, code: code(codeDigest))
        return grant
    }

    func tokens(_ access: String, refresh: String?, grant: String = "grant") -> IssuedTokens {
        IssuedTokens(
            access: AccessTokenRecord(
                digest: access, grantID: grant, clientID: "client", scope: ["read:todos"],
                resource: "http://localhost:8788/mcp", expiresAt: now.addingTimeInterval(3600)),
            refreshDigest: refresh)
    }
}

/// One suite for every backend: what the gateway relies on, including the atomic operations under concurrency, on
/// one instance and, for PostgreSQL, across instances.
@Suite("Store conformance")
struct StoreConformanceTests {
    let fixture = StoreFixture()
    var now: Date { fixture.now }

    @Test(arguments: StoreBackend.available)
    func fiftyConcurrentRedemptionsOfOneCodeYieldExactlyOneSuccess(backend: StoreBackend) async throws {
        try await backend.withStorage(instances: 2) { instances in
            try await fixture.seed(instances[0])
            let outcomes = await withTaskGroup(of: CodeRedemption?.self) { group in
                for index in 0..<50 {
                    group.addTask {
                        try? await instances[index % 2].codes.redeem(
                            codeDigest: "code", issuing: fixture.tokens("access-\(index)", refresh: nil), now: now)
                    }
                }
                return await group.reduce(into: [CodeRedemption?]()) { $0.append($1) }
            }
            #expect(outcomes.filter { $0 == .redeemed }.count == 1)
            #expect(outcomes.filter { $0 == .replayed }.count == 49)
            // The replays revoked the grant and the one access token it produced.
            #expect(try await instances[1].grants.grant(id: "grant")?.revokedAt != nil)
            for index in 0..<50 {
                #expect(try await instances[0].accessTokens.accessToken(digest: "access-\(index)", now: now) == nil)
            }
        }
    }

    @Test(arguments: StoreBackend.available)
    func concurrentRefreshesFollowTheRotationRule(backend: StoreBackend) async throws {
        try await backend.withStorage(instances: 2) { instances in
            try await fixture.seed(instances[0])
            #expect(
                try await instances[0].codes.redeem(
                    codeDigest: "code", issuing: fixture.tokens("a0", refresh: "r0"), now: now) == .redeemed)

            // Twenty retries of the same refresh at once, on two instances: each succeeds (r0 stays usable while its
            // successor is unused), and only the last successor is current.
            let outcomes = await withTaskGroup(of: RefreshRotation?.self) { group in
                for index in 1...20 {
                    group.addTask {
                        try? await instances[index % 2].refreshTokens.rotate(
                            refreshDigest: "r0", grantID: "grant",
                            issuing: fixture.tokens("a\(index)", refresh: "r\(index)"), now: now)
                    }
                }
                return await group.reduce(into: [RefreshRotation?]()) { $0.append($1) }
            }
            #expect(outcomes.allSatisfy { $0 == .rotated })
            let grant = try #require(try await instances[0].grants.grant(id: "grant"))
            #expect(grant.previousRefreshDigest == "r0")
            let current = try #require(grant.currentRefreshDigest)

            // Using the newest token rotates again; r0 is now older than the previous one and revokes the grant.
            let refresh = instances[1].refreshTokens
            #expect(
                try await refresh.rotate(
                    refreshDigest: current, grantID: "grant", issuing: fixture.tokens("b1", refresh: "s1"), now: now)
                    == .rotated)
            #expect(
                try await refresh.rotate(
                    refreshDigest: "r0", grantID: "grant", issuing: fixture.tokens("b2", refresh: "s2"), now: now)
                    == .reused)
            #expect(try await instances[0].grants.grant(id: "grant")?.revokedAt != nil)
            #expect(try await instances[0].accessTokens.accessToken(digest: "b1", now: now) == nil)
            #expect(
                try await refresh.rotate(
                    refreshDigest: "s1", grantID: "grant", issuing: fixture.tokens("b3", refresh: "s3"), now: now)
                    == .inactive)
        }
    }

    @Test(arguments: StoreBackend.available)
    func concurrentRotationsOfTheNewestTokenLeaveOneSuccessor(backend: StoreBackend) async throws {
        try await backend.withStorage(instances: 2) { instances in
            try await fixture.seed(instances[0])
            _ = try await instances[0].codes.redeem(
                codeDigest: "code", issuing: fixture.tokens("a0", refresh: "r0"), now: now)
            _ = try await instances[0].refreshTokens.rotate(
                refreshDigest: "r0", grantID: "grant", issuing: fixture.tokens("a1", refresh: "r1"), now: now)
            // r1 is the newest: of ten concurrent uses, the first rotates it and makes it the previous token; the
            // others then present the previous token within its grace. None is taken for a replay.
            let outcomes = await withTaskGroup(of: RefreshRotation?.self) { group in
                for index in 0..<10 {
                    group.addTask {
                        try? await instances[index % 2].refreshTokens.rotate(
                            refreshDigest: "r1", grantID: "grant",
                            issuing: fixture.tokens("c\(index)", refresh: "s\(index)"), now: now)
                    }
                }
                return await group.reduce(into: [RefreshRotation?]()) { $0.append($1) }
            }
            #expect(outcomes.allSatisfy { $0 == .rotated })
            let grant = try #require(try await instances[1].grants.grant(id: "grant"))
            #expect(grant.previousRefreshDigest == "r1")
            #expect(grant.revokedAt == nil)
        }
    }

    @Test(arguments: StoreBackend.available)
    func aDiscardedSuccessorRevokesTheGrant(backend: StoreBackend) async throws {
        try await backend.withStorage { storage in
            try await fixture.seed(storage)
            let refresh = storage.refreshTokens
            _ = try await storage.codes.redeem(
                codeDigest: "code", issuing: fixture.tokens("a0", refresh: "r0"), now: now)
            #expect(
                try await refresh.rotate(
                    refreshDigest: "r0", grantID: "grant", issuing: fixture.tokens("a1", refresh: "r1"), now: now)
                    == .rotated)
            // The response carrying r1 was lost; the client retries with r0, and gets r2.
            #expect(
                try await refresh.rotate(
                    refreshDigest: "r0", grantID: "grant", issuing: fixture.tokens("a2", refresh: "r2"), now: now)
                    == .rotated)
            // r1 was never delivered; whoever presents it is not the client.
            #expect(
                try await refresh.rotate(
                    refreshDigest: "r1", grantID: "grant", issuing: fixture.tokens("a3", refresh: "r3"), now: now)
                    == .reused)
            #expect(try await refresh.grant(refreshDigest: "r1")?.id == "grant")
        }
    }

    @Test(arguments: StoreBackend.available)
    func thePreviousTokenWorksOnlyWithinItsGrace(backend: StoreBackend) async throws {
        try await backend.withStorage { storage in
            try await fixture.seed(storage)
            _ = try await storage.codes.redeem(
                codeDigest: "code", issuing: fixture.tokens("a0", refresh: "r0"), now: now)
            func rotate(_ presented: String, _ issued: String, at seconds: TimeInterval) async throws
                -> RefreshRotation
            {
                try await storage.refreshTokens.rotate(
                    refreshDigest: presented, grantID: "grant",
                    issuing: fixture.tokens("a-\(issued)", refresh: issued),
                    now: now.addingTimeInterval(seconds), graceUntil: now.addingTimeInterval(seconds + 60))
            }
            #expect(try await rotate("r0", "r1", at: 0) == .rotated)
            // Retries with r0 inside the 60 s grace succeed, and do not push the grace's end back.
            #expect(try await rotate("r0", "r2", at: 30) == .rotated)
            #expect(try await rotate("r0", "r3", at: 60) == .rotated)
            #expect(
                try await storage.grants.grant(id: "grant")?.previousRefreshValidUntil == now.addingTimeInterval(60))
            // One second after the grace, r0 is a replayed token: the grant is revoked with everything it issued.
            #expect(try await rotate("r0", "r4", at: 61) == .reused)
            #expect(try await storage.grants.grant(id: "grant")?.revokedAt == now.addingTimeInterval(61))
            #expect(try await storage.accessTokens.accessToken(digest: "a-r3", now: now.addingTimeInterval(61)) == nil)
            #expect(try await rotate("r3", "r5", at: 62) == .inactive)
        }
    }

    @Test(arguments: StoreBackend.available)
    func aGraceOfZeroAcceptsNoLaterRetry(backend: StoreBackend) async throws {
        try await backend.withStorage { storage in
            try await fixture.seed(storage)
            _ = try await storage.codes.redeem(
                codeDigest: "code", issuing: fixture.tokens("a0", refresh: "r0"), now: now)
            #expect(
                try await storage.refreshTokens.rotate(
                    refreshDigest: "r0", grantID: "grant", issuing: fixture.tokens("a1", refresh: "r1"), now: now,
                    graceUntil: now) == .rotated)
            #expect(
                try await storage.refreshTokens.rotate(
                    refreshDigest: "r0", grantID: "grant", issuing: fixture.tokens("a2", refresh: "r2"),
                    now: now.addingTimeInterval(1), graceUntil: now.addingTimeInterval(1)) == .reused)
        }
    }

    @Test(arguments: StoreBackend.available)
    func aCodeOfARevokedGrantRedeemsNothing(backend: StoreBackend) async throws {
        try await backend.withStorage { storage in
            try await fixture.seed(storage)
            #expect(try await storage.grants.revokeGrant(id: "grant", now: now))
            #expect(try await !storage.grants.revokeGrant(id: "grant", now: now))
            #expect(
                try await storage.codes.redeem(codeDigest: "code", issuing: fixture.tokens("a", refresh: nil), now: now)
                    == .unknown)
            #expect(
                try await storage.codes.redeem(
                    codeDigest: "missing", issuing: fixture.tokens("b", refresh: nil), now: now) == .unknown)
            #expect(try await storage.accessTokens.accessToken(digest: "a", now: now) == nil)
        }
    }

    @Test(arguments: StoreBackend.available)
    func recordsRoundTripUnchanged(backend: StoreBackend) async throws {
        try await backend.withStorage { storage in
            var client = fixture.client()
            client.secretDigest = "digest"
            client.authMethod = .clientSecretPost
            client.uri = "https://c.example"
            client.logoURI = "https://c.example/logo.png"
            client.redirectURIs = ["http://localhost/cb", "https://c.example/cb?x=1"]
            try await storage.clients.insert(client: client)
            #expect(try await storage.clients.client(id: "client") == client)
            #expect(try await storage.clients.client(id: "other") == nil)

            var grant = try fixture.grant()
            grant.user = UserProfile(subject: "auth0|älice", name: "Älice \"A\"", email: "a@example.com")
            grant.upstream?.refreshToken = try TokenCipher(secret: String(repeating: "k", count: 40)).seal(
                "refresh", context: "refresh:grant")
            grant.upstream?.refreshStartedAt = now.addingTimeInterval(-5)
            var code = fixture.code()
            code.redirectURIRequired = false
            code.resource = "http://localhost:8788/mcp"
            try await storage.codes.insert(grant: grant, code: code)
            let stored = try #require(try await storage.grants.grant(id: "grant"))
            #expect(stored.user == grant.user)
            #expect(stored.upstream == grant.upstream)
            #expect(stored.scope == grant.scope && stored.resource == grant.resource)
            #expect(stored.createdAt == grant.createdAt && stored.expiresAt == grant.expiresAt)
            let storedCode = try #require(try await storage.codes.code(digest: "code"))
            #expect(!storedCode.redirectURIRequired && storedCode.resource == code.resource)
            #expect(storedCode.expiresAt == code.expiresAt && storedCode.redeemedAt == nil)

            _ = try await storage.codes.redeem(
                codeDigest: "code", issuing: fixture.tokens("access", refresh: "refresh"), now: now)
            let found = try #require(try await storage.accessTokens.accessToken(digest: "access", now: now))
            #expect(found.token.scope == ["read:todos"] && found.token.clientID == "client")
            #expect(found.grant.currentRefreshDigest == "refresh" && found.grant.user == grant.user)
            #expect(try await storage.codes.code(digest: "code")?.redeemedAt == now)
            // A refresh reads a summary of the grant, column by column: every field as the whole grant has it.
            let redeemed = try #require(try await storage.grants.grant(id: "grant"))
            #expect(try await storage.refreshTokens.grant(refreshDigest: "refresh") == GrantSummary(redeemed))
            #expect(try await storage.refreshTokens.grant(refreshDigest: "unknown") == nil)
        }
    }

    @Test(arguments: StoreBackend.available)
    func savingAClientKeepsItsFirstCreationAndItsGrants(backend: StoreBackend) async throws {
        try await backend.withStorage { storage in
            try await fixture.seed(storage)
            let known = try #require(try await storage.clients.client(id: "client"))
            var again = known
            again.createdAt = now.addingTimeInterval(500)  // a fetch keeps the first createdAt anyway
            try await storage.clients.save(client: again)
            #expect(try await storage.clients.client(id: "client") == known)
            again.name = "Renamed"
            again.redirectURIs = ["http://localhost/other"]
            try await storage.clients.save(client: again)
            let saved = try #require(try await storage.clients.client(id: "client"))
            #expect(saved.name == "Renamed" && saved.redirectURIs == ["http://localhost/other"])
            #expect(saved.createdAt == known.createdAt)
            #expect(try await storage.grants.grant(id: "grant") != nil)
            // A client seen for the first time is inserted.
            try await storage.clients.save(client: fixture.client("https://new.example/client.json"))
            #expect(try await storage.clients.client(id: "https://new.example/client.json") != nil)
        }
    }

    @Test func savingAnUnchangedClientWritesNothingToSQLite() async throws {
        let database = try SQLiteSchema.inMemory()
        let storage = GatewayStorage.sqlite(database)
        try await fixture.seed(storage)
        let changes = try await database.write { db in db.totalChangesCount }
        var again = try #require(try await storage.clients.client(id: "client"))
        again.createdAt = now.addingTimeInterval(500)
        try await storage.clients.save(client: again)
        #expect(try await database.write { db in db.totalChangesCount } == changes)
    }

    @Test(arguments: StoreBackend.available)
    func pendingSignInsAreSingleUseAndExpire(backend: StoreBackend) async throws {
        try await backend.withStorage(instances: 2) { instances in
            let request = ClientAuthorizationRequest(
                clientID: "c", redirectURI: "http://localhost/cb", redirectURIIncluded: false,
                scope: ["read:todos"], state: "s", codeChallenge: "x", resource: "http://localhost:8788/mcp")
            let verifier = try TokenCipher(secret: String(repeating: "k", count: 40)).seal("v", context: "pkce")
            for key in ["one", "two"] {
                try await instances[0].pendingSignIns.insert(
                    pending: PendingAuthorization(
                        keyDigest: key, bindingDigest: "b", request: request, upstreamNonce: "n",
                        upstreamVerifier: verifier, expiresAt: now.addingTimeInterval(600)))
            }
            // Ten callbacks with one state, on two instances: one gets the sign-in.
            let taken = await withTaskGroup(of: PendingAuthorization?.self) { group in
                for index in 0..<10 {
                    group.addTask {
                        try? await instances[index % 2].pendingSignIns.takePending(keyDigest: "one", now: now)
                    }
                }
                return await group.reduce(into: [PendingAuthorization]()) { if let taken = $1 { $0.append(taken) } }
            }
            #expect(taken.count == 1)
            #expect(taken.first?.request == request && taken.first?.upstreamVerifier == verifier)
            #expect(try await instances[1].pendingSignIns.takePending(keyDigest: "one", now: now) == nil)
            #expect(
                try await instances[1].pendingSignIns.takePending(keyDigest: "two", now: now.addingTimeInterval(600))
                    == nil)
        }
    }

    @Test(arguments: StoreBackend.available)
    func expiryFollowsTheInjectedClockAndTheSweepRemovesWhatExpired(backend: StoreBackend) async throws {
        try await backend.withStorage { storage in
            try await fixture.seed(storage)
            _ = try await storage.codes.redeem(
                codeDigest: "code", issuing: fixture.tokens("access", refresh: nil), now: now)
            #expect(
                try await storage.accessTokens.accessToken(digest: "access", now: now.addingTimeInterval(3599)) != nil)
            #expect(
                try await storage.accessTokens.accessToken(digest: "access", now: now.addingTimeInterval(3600)) == nil)
            // A second grant, revoked: kept a week for replay detection, then swept.
            try await storage.codes.insert(
                grant: try fixture.grant("revoked"), code: fixture.code("code2", grant: "revoked"))
            try await storage.grants.revokeGrant(id: "revoked", now: now)
            let report = try await storage.maintenance.sweep(
                now: now.addingTimeInterval(3600), unusedClientsBefore: now.addingTimeInterval(-86_400))
            #expect(report.accessTokens == 1 && report.grants == 0)
            #expect(try await storage.grants.grant(id: "revoked") != nil)
            // Once the grant expires, nothing it issued works, and the sweep removes it.
            let later = now.addingTimeInterval(7 * 86_400 + 1)
            let second = try await storage.maintenance.sweep(
                now: later, unusedClientsBefore: now.addingTimeInterval(-86_400))
            #expect(second.grants == 2)
            #expect(try await storage.grants.grant(id: "grant") == nil)
            #expect(try await storage.codes.code(digest: "code") == nil)
            #expect(try await storage.clients.client(id: "client") != nil)  // registered after the cutoff
        }
    }

    @Test(arguments: StoreBackend.available)
    func registrationsThatNeverObtainedAGrantAreSwept(backend: StoreBackend) async throws {
        try await backend.withStorage { storage in
            try await fixture.seed(storage)  // "client" has a grant
            for (id, age) in [("idle-old", 86_401.0), ("idle-new", 3600.0)] {
                try await storage.clients.insert(client: fixture.client(id, createdAt: now.addingTimeInterval(-age)))
            }
            let report = try await storage.maintenance.sweep(
                now: now, unusedClientsBefore: now.addingTimeInterval(-86_400))
            #expect(report == SweepReport(clients: 1))
            #expect(try await storage.clients.client(id: "idle-old") == nil)
            #expect(try await storage.clients.client(id: "idle-new") != nil)
            #expect(try await storage.clients.client(id: "client") != nil)
        }
    }

    @Test(arguments: StoreBackend.available)
    func operatorsListCountAndDelete(backend: StoreBackend) async throws {
        try await backend.withStorage { storage in
            try await storage.clients.insert(client: fixture.client("a", createdAt: now.addingTimeInterval(-10)))
            try await storage.clients.insert(client: fixture.client("b"))
            try await storage.codes.insert(
                grant: try fixture.grant("g1", client: "a"), code: fixture.code("c1", grant: "g1", client: "a"))
            try await storage.codes.insert(
                grant: try fixture.grant("g2", client: "b"), code: fixture.code("c2", grant: "g2", client: "b"))
            try await storage.codes.insert(
                grant: try fixture.grant("g3", client: "b", subject: "auth0|bob"),
                code: fixture.code("c3", grant: "g3", client: "b"))
            _ = try await storage.codes.redeem(
                codeDigest: "c2", issuing: fixture.tokens("t2", refresh: nil, grant: "g2"), now: now)

            let clients = try await storage.clients.clients(now: now)
            #expect(clients.map(\.client.id) == ["b", "a"])
            #expect(clients.map(\.activeGrants) == [2, 1])
            #expect(Set(try await storage.grants.activeGrants(.all, now: now).map(\.id)) == ["g1", "g2", "g3"])
            #expect(
                Set(try await storage.grants.activeGrants(.user(subject: "auth0|alice"), now: now).map(\.id)) == [
                    "g1", "g2",
                ])
            #expect(try await storage.grants.activeGrants(.client(id: "a"), now: now).map(\.id) == ["g1"])
            #expect(
                try await storage.maintenance.counts(now: now)
                    == StoreCounts(clients: 2, activeGrants: 3, users: 2, accessTokens: 1, pendingSignIns: 0))

            // Deleting a client takes its grants and their tokens with it.
            #expect(try await storage.clients.deleteClient(id: "b"))
            #expect(try await !storage.clients.deleteClient(id: "b"))
            #expect(try await storage.grants.grant(id: "g2") == nil)
            #expect(try await storage.accessTokens.accessToken(digest: "t2", now: now) == nil)
            #expect(try await storage.grants.activeGrants(.all, now: now).map(\.id) == ["g1"])
        }
    }

    @Test(arguments: StoreBackend.available)
    func oneOfManyConcurrentUpstreamReplacementsWins(backend: StoreBackend) async throws {
        try await backend.withStorage(instances: 2) { instances in
            let grant = try await fixture.seed(instances[0])
            // What several instances do when they all find the upstream token about to expire: mark the refresh as
            // started, expecting the tokens they read. Exactly one may call the provider.
            let winners = await withTaskGroup(of: Bool.self) { group in
                for index in 0..<12 {
                    group.addTask {
                        guard let read = grant.upstream else { return false }
                        var attempt = read
                        attempt.refreshStartedAt = now.addingTimeInterval(Double(index))
                        return
                            (try? await instances[index % 2].upstreamTokens.replaceUpstream(
                                grantID: "grant", expected: read, with: attempt)) ?? false
                    }
                }
                return await group.reduce(0) { $0 + ($1 ? 1 : 0) }
            }
            #expect(winners == 1)
            let marked = try #require(try await instances[1].grants.grant(id: "grant")?.upstream)
            #expect(marked.refreshStartedAt != nil)
            var refreshed = marked
            refreshed.refreshStartedAt = nil
            refreshed.expiresAt = now.addingTimeInterval(7200)
            try await instances[1].upstreamTokens.updateUpstream(grantID: "grant", tokens: refreshed)
            #expect(try await instances[0].grants.grant(id: "grant")?.upstream == refreshed)
            #expect(
                try await instances[0].upstreamTokens.sealingKeyIDs(now: now)
                    == Set([grant.upstream?.accessToken.keyID].compactMap { $0 }))
        }
    }
}

@Suite("Access token cache")
struct AccessTokenCacheTests {
    let fixture = StoreFixture()
    var now: Date { fixture.now }

    @Test(arguments: StoreBackend.available)
    func everyWriteThatEndsATokenEmptiesTheCacheAtOnce(backend: StoreBackend) async throws {
        for write in ["revoke", "delete", "upstream", "reuse", "replay", "delete client"] {
            try await backend.withStorage { storage in
                let grant = try await fixture.seed(storage)
                let cache = AccessTokenCache(wrapping: storage.accessTokens, feed: storage.changes, lifetime: 600)
                _ = try await storage.codes.redeem(
                    codeDigest: "code", issuing: fixture.tokens("a1", refresh: "r1"), now: now)
                let cached = try #require(try await cache.accessToken(digest: "a1", now: now))
                #expect(cached.grant.upstream?.expiresAt == grant.upstream?.expiresAt)
                switch write {
                case "revoke":
                    try await storage.grants.revokeGrant(id: "grant", now: now)
                case "delete":
                    #expect(try await cache.deleteAccessToken(digest: "a1", clientID: "client"))
                case "upstream":
                    var upstream = try #require(grant.upstream)
                    upstream.expiresAt = now.addingTimeInterval(99_999)
                    try await storage.upstreamTokens.updateUpstream(grantID: "grant", tokens: upstream)
                    let fresh = try await cache.accessToken(digest: "a1", now: now)
                    #expect(fresh?.grant.upstream?.expiresAt == now.addingTimeInterval(99_999), "\(write)")
                    return
                case "reuse":
                    _ = try await storage.refreshTokens.rotate(
                        refreshDigest: "r1", grantID: "grant", issuing: fixture.tokens("a2", refresh: "r2"), now: now)
                    #expect(
                        try await storage.refreshTokens.rotate(
                            refreshDigest: "stale", grantID: "grant", issuing: fixture.tokens("a3", refresh: "r3"),
                            now: now) == .reused)
                case "replay":
                    #expect(
                        try await storage.codes.redeem(
                            codeDigest: "code", issuing: fixture.tokens("a4", refresh: nil), now: now) == .replayed)
                default:
                    #expect(try await storage.clients.deleteClient(id: "client"))
                }
                #expect(try await cache.accessToken(digest: "a1", now: now) == nil, "\(write)")
            }
        }
    }

    @Test(arguments: StoreBackend.shared)
    func aRevocationOnOneInstanceEndsTheTokenOnAnotherWithinASecond(backend: StoreBackend) async throws {
        try await backend.withStorage(instances: 2) { instances in
            try await fixture.seed(instances[0])
            _ = try await instances[0].codes.redeem(
                codeDigest: "code", issuing: fixture.tokens("a1", refresh: nil), now: now)
            let cache = AccessTokenCache(wrapping: instances[0].accessTokens, feed: instances[0].changes, lifetime: 600)
            #expect(try await cache.accessToken(digest: "a1", now: now) != nil)

            try await instances[1].grants.revokeGrant(id: "grant", now: now)
            let start = ContinuousClock.now
            while try await cache.accessToken(digest: "a1", now: now) != nil {
                #expect(ContinuousClock.now - start < .seconds(1), "the other instance's revocation did not arrive")
                if ContinuousClock.now - start >= .seconds(1) { return }
                try await Task.sleep(for: .milliseconds(5))
            }
        }
    }

    @Test func nothingIsCachedWhileChangesMayBeMissed() async throws {
        let database = try SQLiteSchema.inMemory()
        let storage = GatewayStorage.sqlite(database)
        try await fixture.seed(storage)
        _ = try await storage.codes.redeem(codeDigest: "code", issuing: fixture.tokens("a1", refresh: nil), now: now)
        let feed = GrantChangeFeed(complete: false)
        let cache = AccessTokenCache(wrapping: storage.accessTokens, feed: feed, lifetime: 600)
        #expect(try await cache.accessToken(digest: "a1", now: now) != nil)
        // A write the feed never heard of (another instance while the listener was down) is seen at once.
        try await database.write { db in try db.execute(sql: "UPDATE oauthGrant SET revokedAt = ?", arguments: [now]) }
        #expect(try await cache.accessToken(digest: "a1", now: now) == nil)

        // Listening again: cached.
        try await database.write { db in try db.execute(sql: "UPDATE oauthGrant SET revokedAt = NULL") }
        feed.setComplete(true)
        #expect(try await cache.accessToken(digest: "a1", now: now) != nil)
        // The listener's connection is lost (the database went down): what is cached keeps serving for its lifetime,
        // so tool calls go on through a short outage, and nothing new is cached.
        feed.setComplete(false)
        try await database.write { db in try db.execute(sql: "UPDATE oauthGrant SET revokedAt = ?", arguments: [now]) }
        #expect(try await cache.accessToken(digest: "a1", now: now) != nil)  // cached: the feed missed it
        #expect(try await cache.accessToken(digest: "a1", now: now.addingTimeInterval(600)) == nil)  // expired
        // Listening again empties the cache: the revocation made while nobody listened is seen at once.
        try await database.write { db in try db.execute(sql: "UPDATE oauthGrant SET revokedAt = NULL") }
        feed.setComplete(true)
        #expect(try await cache.accessToken(digest: "a1", now: now) != nil)
        feed.setComplete(false)
        try await database.write { db in try db.execute(sql: "UPDATE oauthGrant SET revokedAt = ?", arguments: [now]) }
        #expect(try await cache.accessToken(digest: "a1", now: now) != nil)
        feed.setComplete(true)
        #expect(try await cache.accessToken(digest: "a1", now: now) == nil)
    }

    @Test func cachedEntriesEndWithTheirLifetime() async throws {
        let database = try SQLiteSchema.inMemory()
        let storage = GatewayStorage.sqlite(database)
        try await fixture.seed(storage)
        _ = try await storage.codes.redeem(codeDigest: "code", issuing: fixture.tokens("a1", refresh: nil), now: now)
        let cache = AccessTokenCache(wrapping: storage.accessTokens, feed: storage.changes, lifetime: 10)
        #expect(try await cache.accessToken(digest: "a1", now: now) != nil)
        try await database.write { db in try db.execute(sql: "UPDATE oauthGrant SET revokedAt = ?", arguments: [now]) }
        #expect(try await cache.accessToken(digest: "a1", now: now.addingTimeInterval(9)) != nil)
        #expect(try await cache.accessToken(digest: "a1", now: now.addingTimeInterval(10)) == nil)
    }

    @Test func aLookupThatReadBeforeARevocationCannotPutTheTokenBack() async throws {
        let storage = GatewayStorage.sqlite(try SQLiteSchema.inMemory())
        try await fixture.seed(storage)
        _ = try await storage.codes.redeem(codeDigest: "code", issuing: fixture.tokens("a1", refresh: "r1"), now: now)
        let paused = PausingAccessTokenStore(wrapping: storage.accessTokens)
        let cache = AccessTokenCache(wrapping: paused, feed: storage.changes, lifetime: 10)

        // A lookup reads the still-active grant from the database, then stalls before it caches the answer...
        let lookup = Task { try await cache.accessToken(digest: "a1", now: now) }
        await paused.readHappened()
        // ... while the grant is revoked, and the revocation commits.
        try await storage.grants.revokeGrant(id: "grant", now: now)
        paused.release()
        #expect(try await lookup.value != nil)  // it read before the revocation: that answer is its own
        // The stale read must not have been cached: the next lookup sees the revocation.
        #expect(try await cache.accessToken(digest: "a1", now: now.addingTimeInterval(1)) == nil)
    }
}

/// Forwards to a store; its first lookup completes in the database, then waits for ``release()``.
final class PausingAccessTokenStore: AccessTokenStore, @unchecked Sendable {
    let store: any AccessTokenStore
    private let (reads, readContinuation) = AsyncStream<Void>.makeStream()
    private let (gate, gateContinuation) = AsyncStream<Void>.makeStream()
    private let pauses = Mutex(true)

    init(wrapping store: any AccessTokenStore) { self.store = store }

    func readHappened() async { for await _ in reads { return } }
    func release() { gateContinuation.yield() }

    func accessToken(digest: String, now: Date) async throws -> AuthenticatedAccessToken? {
        let found = try await store.accessToken(digest: digest, now: now)
        let first = pauses.withLock { pauses in
            defer { pauses = false }
            return pauses
        }
        guard first else { return found }
        readContinuation.yield()
        for await _ in gate { break }
        return found
    }

    func deleteAccessToken(digest: String, clientID: String) async throws -> Bool {
        try await store.deleteAccessToken(digest: digest, clientID: clientID)
    }
}

extension RefreshTokenStore {
    /// A rotation with the default 60-second grace, for tests about something else.
    func rotate(refreshDigest: String, grantID: String, issuing tokens: IssuedTokens, now: Date) async throws
        -> RefreshRotation
    {
        try await rotate(
            refreshDigest: refreshDigest, grantID: grantID, issuing: tokens, now: now,
            graceUntil: now.addingTimeInterval(60))
    }
}

@Suite("Client cache")
struct ClientCacheTests {
    let fixture = StoreFixture()
    var now: Date { fixture.now }

    func renamed(_ client: RegisteredClient) -> RegisteredClient {
        var client = client
        client.name = "Renamed"
        return client
    }

    @Test(arguments: StoreBackend.available)
    func everyWriteThatChangesAClientDropsItAtOnce(backend: StoreBackend) async throws {
        for write in ["save", "delete", "sweep"] {
            try await backend.withStorage { storage in
                try await storage.clients.insert(client: fixture.client("client"))
                let cache = ClientCache(wrapping: storage.clients, feed: storage.changes, lifetime: 600)
                #expect(try await cache.client(id: "client")?.name == "Test")
                switch write {
                case "save":
                    try await storage.clients.save(client: renamed(fixture.client("client")))
                    #expect(try await cache.client(id: "client")?.name == "Renamed", "\(write)")
                    return
                case "delete":
                    #expect(try await storage.clients.deleteClient(id: "client"))
                default:
                    // A registration nothing came of, swept.
                    let report = try await storage.maintenance.sweep(
                        now: now, unusedClientsBefore: now.addingTimeInterval(1))
                    #expect(report.clients == 1)
                }
                #expect(try await cache.client(id: "client") == nil, "\(write)")
            }
        }
    }

    @Test(arguments: StoreBackend.available)
    func aClientNotFoundIsFoundOnceRegisteredAndAnUnchangedSaveKeepsItCached(backend: StoreBackend) async throws {
        try await backend.withStorage { storage in
            let cache = ClientCache(wrapping: storage.clients, feed: storage.changes, lifetime: 600)
            #expect(try await cache.client(id: "client") == nil)
            try await storage.clients.insert(client: fixture.client("client"))
            #expect(try await cache.client(id: "client") != nil)
            let announced = Mutex(0)
            storage.changes.subscribe { change in
                if change == .client(id: "client") { announced.withLock { $0 += 1 } }
            }
            try await storage.clients.save(client: fixture.client("client"))
            #expect(announced.withLock { $0 } == 0)
            try await storage.clients.save(client: renamed(fixture.client("client")))
            #expect(announced.withLock { $0 } >= 1)
        }
    }

    @Test(arguments: StoreBackend.shared)
    func anotherInstancesWritesReachTheCacheWithinASecond(backend: StoreBackend) async throws {
        try await backend.withStorage(instances: 2) { instances in
            try await instances[0].clients.insert(client: fixture.client("client"))
            let cache = ClientCache(wrapping: instances[0].clients, feed: instances[0].changes, lifetime: 600)
            #expect(try await cache.client(id: "client")?.name == "Test")

            func within(_ what: String, until done: () async throws -> Bool) async throws {
                let start = ContinuousClock.now
                while try await !done() {
                    guard ContinuousClock.now - start < .seconds(1) else {
                        Issue.record("the other instance's \(what) did not arrive")
                        return
                    }
                    try await Task.sleep(for: .milliseconds(5))
                }
            }
            try await instances[1].clients.save(client: renamed(fixture.client("client")))
            try await within("save") { try await cache.client(id: "client")?.name == "Renamed" }
            #expect(try await instances[1].clients.deleteClient(id: "client"))
            try await within("deletion") { try await cache.client(id: "client") == nil }
        }
    }

    @Test func nothingIsCachedWhileChangesMayBeMissed() async throws {
        let database = try SQLiteSchema.inMemory()
        let storage = GatewayStorage.sqlite(database)
        try await storage.clients.insert(client: fixture.client("client"))
        let feed = GrantChangeFeed(complete: false)
        let cache = ClientCache(wrapping: storage.clients, feed: feed, lifetime: 600)
        #expect(try await cache.client(id: "client") != nil)
        // A deletion the feed never heard of (another instance while the listener was down) is seen at once.
        try await database.write { db in try db.execute(sql: "DELETE FROM client") }
        #expect(try await cache.client(id: "client") == nil)
        // Listening again: cached, and emptied when the feed says changes may have been missed.
        try await storage.clients.insert(client: fixture.client("client"))
        feed.setComplete(true)
        #expect(try await cache.client(id: "client") != nil)
        try await database.write { db in try db.execute(sql: "DELETE FROM client") }
        #expect(try await cache.client(id: "client") != nil)  // cached: the feed missed it
        feed.setComplete(false)
        feed.setComplete(true)
        #expect(try await cache.client(id: "client") == nil)
    }

    @Test func entriesLastTheirLifetime() async throws {
        let database = try SQLiteSchema.inMemory()
        let storage = GatewayStorage.sqlite(database)
        try await storage.clients.insert(client: fixture.client("client"))
        let cache = ClientCache(wrapping: storage.clients, feed: storage.changes, lifetime: 0.05)
        #expect(try await cache.client(id: "client") != nil)
        try await database.write { db in try db.execute(sql: "DELETE FROM client") }
        try await Task.sleep(for: .milliseconds(100))
        #expect(try await cache.client(id: "client") == nil)
    }
}
