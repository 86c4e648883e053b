import Foundation
import JSON
import Logging
import TestSupport
import Testing

@testable import JWTAuth

@Suite("JWKS cache")
struct JWKSCacheTests {
    let url = "https://tenant.example.com/.well-known/jwks.json"
    let clock = ManualClock(TestTokens.now)

    func cache(_ fetcher: FakeFetcher, logs: LogCapture = LogCapture(), source: JWKSSource? = nil) -> JWKSCache {
        JWKSCache(
            configuration: .init(source: source ?? .url(url)), fetcher: fetcher, clock: clock, logger: logs.logger)
    }

    @Test func fetchesOnFirstUseAndHonoursMaxAge() async throws {
        let key = try await TestKeys.primary
        let fetcher = FakeFetcher()
        fetcher.serve(url, .document(try TestKeys.jwks([key]), maxAge: 600))
        let cache = cache(fetcher)
        _ = try await cache.key(withID: key.keyID)
        #expect(fetcher.fetchCount(url) == 1)

        clock.advance(by: 599)
        _ = try await cache.key(withID: key.keyID)
        await cache.waitForRunningRefresh()
        #expect(fetcher.fetchCount(url) == 1)

        clock.advance(by: 2)
        _ = try await cache.key(withID: key.keyID)  // served from cache while a refresh runs
        await cache.waitForRunningRefresh()
        #expect(fetcher.fetchCount(url) == 2)
    }

    @Test(arguments: [(TimeInterval(10), TimeInterval(300)), (999_999, 86_400), (nil, 3600)])
    func clampsTheLifetime(maxAge: TimeInterval?, expected: TimeInterval) async throws {
        let key = try await TestKeys.primary
        let fetcher = FakeFetcher()
        fetcher.serve(url, .document(try TestKeys.jwks([key]), maxAge: maxAge))
        let cache = cache(fetcher)
        await cache.refresh()
        clock.advance(by: expected - 1)
        _ = try await cache.key(withID: key.keyID)
        await cache.waitForRunningRefresh()
        #expect(fetcher.fetchCount(url) == 1)
        clock.advance(by: 2)
        _ = try await cache.key(withID: key.keyID)
        await cache.waitForRunningRefresh()
        #expect(fetcher.fetchCount(url) == 2)
    }

    @Test func unknownKidRefreshIsRateLimited() async throws {
        let key = try await TestKeys.primary
        let fetcher = FakeFetcher()
        fetcher.serve(url, .document(try TestKeys.jwks([key]), maxAge: 3600))
        let cache = cache(fetcher)
        await cache.refresh()
        await #expect(throws: BearerAuthError.unknownKey) { try await cache.key(withID: "rotated-in") }
        #expect(fetcher.fetchCount(url) == 2)
        for _ in 0..<10 {
            await #expect(throws: BearerAuthError.unknownKey) { try await cache.key(withID: "rotated-in") }
        }
        #expect(fetcher.fetchCount(url) == 2)
        clock.advance(by: 5)
        await #expect(throws: BearerAuthError.unknownKey) { try await cache.key(withID: "another") }
        #expect(fetcher.fetchCount(url) == 3)
    }

    @Test func unknownKidRefreshIsSingleFlight() async throws {
        let key = try await TestKeys.primary
        let fetcher = FakeFetcher(delay: .milliseconds(100))
        fetcher.serve(url, .document(try TestKeys.jwks([key]), maxAge: 3600))
        let cache = cache(fetcher)
        await cache.refresh()
        #expect(fetcher.fetchCount(url) == 1)
        let newKey = try await TestKeys.secondary
        fetcher.serve(url, .document(try TestKeys.jwks([key, newKey]), maxAge: 3600))
        let found = await withTaskGroup(of: Bool.self) { group in
            for _ in 0..<100 {
                group.addTask { (try? await cache.key(withID: newKey.keyID)) != nil }
            }
            return await group.reduce(0) { $0 + ($1 ? 1 : 0) }
        }
        #expect(found == 100)
        #expect(fetcher.fetchCount(url) == 2)
    }

    @Test func serveStaleKeysWhileTheEndpointIsDownAndLogOnce() async throws {
        let key = try await TestKeys.primary
        let fetcher = FakeFetcher()
        let logs = LogCapture()
        fetcher.serve(url, .document(try TestKeys.jwks([key]), maxAge: 300))
        let cache = cache(fetcher, logs: logs)
        await cache.refresh()
        fetcher.serve(url, .failure)
        for _ in 0..<5 {
            clock.advance(by: 301)
            #expect(try await cache.key(withID: key.keyID).keyID == key.keyID)
            await cache.waitForRunningRefresh()
            await #expect(throws: BearerAuthError.unknownKey) { try await cache.key(withID: "unknown") }
        }
        #expect(fetcher.fetchCount(url) > 5)
        #expect(logs.count(atLeast: .error) == 1)

        fetcher.serve(url, .document(Array("<html>oops</html>".utf8), maxAge: 300))
        clock.advance(by: 301)
        _ = try await cache.key(withID: key.keyID)
        await cache.waitForRunningRefresh()
        #expect(try await cache.key(withID: key.keyID).keyID == key.keyID)
        #expect(logs.count(atLeast: .error) == 1)

        fetcher.serve(url, .document(try TestKeys.jwks([key]), maxAge: 300))
        clock.advance(by: 301)
        _ = try await cache.key(withID: key.keyID)
        await cache.waitForRunningRefresh()
        #expect(logs.messages(atLeast: .info).contains { $0.contains("again") })
    }

    @Test func requestsDoNotWaitForFetchesWhileTheEndpointIsFailing() async throws {
        let key = try await TestKeys.primary
        let fetcher = FakeFetcher()
        fetcher.serve(url, .document(try TestKeys.jwks([key]), maxAge: 300))
        let cache = cache(fetcher)
        await cache.refresh()
        fetcher.serve(url, .failure)
        clock.advance(by: 301)
        _ = try await cache.key(withID: key.keyID)
        await cache.waitForRunningRefresh()  // the background refresh failed: the cache now knows the endpoint fails

        // The next fetch would hang; an unknown kid is refused at once instead of waiting for it.
        fetcher.serve(url, .hang)
        clock.advance(by: 5)
        await #expect(throws: BearerAuthError.unknownKey) { try await cache.key(withID: "unknown") }
        #expect(try await cache.key(withID: key.keyID).keyID == key.keyID)
        fetcher.release()
        await cache.waitForRunningRefresh()
        #expect(fetcher.fetchCount(url) == 3)  // the retry ran in the background
    }

    @Test func noKeysAtAllIsUnavailableNotUnknown() async throws {
        let fetcher = FakeFetcher()
        fetcher.serve(url, .failure)
        let cache = cache(fetcher)
        await #expect(throws: BearerAuthError.keysUnavailable) { try await cache.key(withID: "any") }
        await #expect(throws: BearerAuthError.keysUnavailable) { try await cache.key(withID: "any") }
        #expect(fetcher.fetchCount(url) == 1)
        #expect(BearerAuthError.keysUnavailable.httpStatus == 503)
    }

    @Test func followsKeyRotation() async throws {
        let old = try await TestKeys.primary
        let new = try await TestKeys.secondary
        let fetcher = FakeFetcher()
        fetcher.serve(url, .document(try TestKeys.jwks([old]), maxAge: 300))
        let cache = cache(fetcher)
        let verifier = JWTVerifier(
            configuration: .init(issuer: TestTokens.issuer, audiences: [TestTokens.audience]), keys: cache, clock: clock
        )
        let oldToken = try old.sign(TestTokens.claims())
        _ = try await verifier.verify(oldToken)

        // The issuer publishes a new key and starts signing with it.
        fetcher.serve(url, .document(try TestKeys.jwks([old, new]), maxAge: 300))
        _ = try await verifier.verify(try new.sign(TestTokens.claims()))
        _ = try await verifier.verify(oldToken)

        // Later the old key is withdrawn: once the set is refreshed, its tokens stop verifying, cached or not.
        fetcher.serve(url, .document(try TestKeys.jwks([new]), maxAge: 300))
        clock.advance(by: 301)
        _ = try await cache.key(withID: new.keyID)
        await cache.waitForRunningRefresh()
        #expect(!cache.containsKey(withID: old.keyID))
        await #expect(throws: BearerAuthError.unknownKey) { try await verifier.verify(oldToken) }
    }

    @Test func discoversTheJWKSURL() async throws {
        let key = try await TestKeys.primary
        let fetcher = FakeFetcher()
        let discovery = "https://tenant.example.com/.well-known/openid-configuration"
        let keysURL = "https://keys.example.com/certs"
        let document = #"{"issuer":"https://tenant.example.com/","jwks_uri":"\#(keysURL)"}"#
        fetcher.serve(discovery, .document(Array(document.utf8), maxAge: nil))
        fetcher.serve(keysURL, .document(try TestKeys.jwks([key]), maxAge: nil))
        let cache = cache(fetcher, source: .discovery(issuer: "https://tenant.example.com/"))
        _ = try await cache.key(withID: key.keyID)
        #expect(fetcher.fetchCount(discovery) == 1)
        #expect(fetcher.fetchCount(keysURL) == 1)
    }

    @Test func refusesADiscoveryDocumentForAnotherIssuer() async throws {
        let fetcher = FakeFetcher()
        let discovery = "https://tenant.example.com/.well-known/openid-configuration"
        let document = #"{"issuer":"https://evil.example.com/","jwks_uri":"https://evil.example.com/keys"}"#
        fetcher.serve(discovery, .document(Array(document.utf8), maxAge: nil))
        let cache = cache(fetcher, source: .discovery(issuer: "https://tenant.example.com/"))
        await #expect(throws: BearerAuthError.keysUnavailable) { try await cache.key(withID: "k") }
        #expect(fetcher.fetchCount("https://evil.example.com/keys") == 0)
    }

    @Test func wellKnownSourceIsTheAuth0Location() {
        #expect(
            JWKSSource.wellKnown(issuer: "https://acme.us.auth0.com/").description
                == "https://acme.us.auth0.com/.well-known/jwks.json")
        #expect(
            JWKSSource.discovery(issuer: "https://kc.example/realms/demo").description
                == "https://kc.example/realms/demo/.well-known/openid-configuration")
    }

    @Test func cacheControlParsing() {
        #expect(CacheControl.maxAge(["public, max-age=600"]) == 600)
        #expect(CacheControl.maxAge(["max-age=\"60\""]) == 60)
        #expect(CacheControl.maxAge(["no-store"]) == 0)
        #expect(CacheControl.maxAge(["public", "must-revalidate"]) == nil)
        #expect(CacheControl.maxAge(["max-age=-5"]) == nil)
    }
}

@Suite("Verified-token cache")
struct VerifiedTokenCacheTests {
    @Test func cachedTokensAreNeverTrustedPastExpiry() async throws {
        let key = try await TestKeys.primary
        let clock = ManualClock(TestTokens.now)
        let verifier = JWTVerifier(
            configuration: .init(
                issuer: TestTokens.issuer, audiences: [TestTokens.audience], leeway: 0, cacheCapacity: 8),
            keys: KeySet([try await key.verificationKey()]), clock: clock)
        let token = try key.sign(TestTokens.claims(["exp": .integer(Int64(TestTokens.now.timeIntervalSince1970) + 10)]))
        _ = try await verifier.verify(token)
        _ = try await verifier.verify(token)
        clock.advance(by: 10)
        await #expect(throws: BearerAuthError.expired) { try await verifier.verify(token) }
    }

    @Test func staysWithinCapacity() async throws {
        let key = try await TestKeys.primary
        let cache = VerifiedTokenCache(capacity: 4)
        let verifier = JWTVerifier(
            configuration: .init(issuer: TestTokens.issuer, audiences: [TestTokens.audience], cacheCapacity: 0),
            keys: KeySet([try await key.verificationKey()]), clock: ManualClock(TestTokens.now))
        for index in 0..<10 {
            let token = try key.sign(TestTokens.claims(["jti": .integer(Int64(index))]))
            cache.insert(try await verifier.verify(token), for: token, now: TestTokens.now)
        }
        #expect(cache.count == 4)
    }
}
