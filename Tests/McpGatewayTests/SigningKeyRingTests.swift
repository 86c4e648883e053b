import Foundation
import JSON
import JWTAuth
import Logging
import TestSupport
import Testing

@testable import McpGateway

/// The rotation of the keys downstream tokens are signed with, on every backend: a new key is published a lead before
/// it signs, the old one stays until its tokens have expired, instances sharing a database agree.
@Suite("Signing key ring")
struct SigningKeyRingTests {
    /// A day's rotation: a six-hour lead is cut to one hour; replaced keys stay ten minutes.
    static let schedule = SigningKeyRing.Schedule(rotation: 86_400, retention: 600)
    static let start = Date(timeIntervalSince1970: 1_750_000_000)

    func ring(_ storage: GatewayStorage, secret: String = String(repeating: "e", count: 40)) -> SigningKeyRing {
        SigningKeyRing(
            store: storage.signingKeys, cipher: TokenCipher(secret: secret), schedule: Self.schedule,
            logger: Logger(label: "test"))
    }

    @Test(arguments: StoreBackend.available)
    func keysRotateWithALeadAndARetention(backend: StoreBackend) async throws {
        try await backend.withStorage { storages in
            let ring = ring(storages[0])
            #expect(Self.schedule.lead == 3600)
            // A new database: the first key signs at once.
            try await ring.refresh(now: Self.start)
            let first = try ring.signingKey().keyID
            #expect(ring.keys?.published.map(\.keyID) == [first])
            // Nothing changes until the rotation's lead before it is due.
            try await ring.refresh(now: Self.start.addingTimeInterval(86_400 - 3600 - 1))
            #expect(ring.keys?.published.count == 1)
            // Then a second key is published, but the first still signs for the lead.
            let made = Self.start.addingTimeInterval(86_400 - 3600)
            try await ring.refresh(now: made)
            let published = try #require(ring.keys?.published.map(\.keyID))
            #expect(published.count == 2 && published[0] == first)
            #expect(try ring.signingKey().keyID == first)
            try await ring.refresh(now: made.addingTimeInterval(3599))
            #expect(try ring.signingKey().keyID == first)
            try await ring.refresh(now: made.addingTimeInterval(3600))
            #expect(try ring.signingKey().keyID == published[1])
            // The first key stays published until its last token (and the leeway) has passed, then goes.
            try await ring.refresh(now: made.addingTimeInterval(3600 + 599))
            #expect(ring.keys?.published.count == 2)
            try await ring.refresh(now: made.addingTimeInterval(3600 + 600))
            #expect(ring.keys?.published.map(\.keyID) == [published[1]])
            #expect(try await storages[0].signingKeys.signingKeys().map(\.id) == [published[1]])
            // The JWKS document lists exactly the published keys, public halves only.
            let document = try #require(ring.keys?.document)
            let keys = try #require(try JSONValue(parsing: document).objectValue?["keys"]?.arrayValue)
            #expect(keys.count == 1 && keys[0].objectValue?["kid"] == .string(published[1]))
            #expect(keys[0].objectValue?["d"] == nil && keys[0].objectValue?["alg"] == "RS256")
        }
    }

    @Test(arguments: StoreBackend.available)
    func instancesSharingADatabaseMakeOneKeyAndAgree(backend: StoreBackend) async throws {
        try await backend.withStorage(instances: 3) { storages in
            let rings = storages.map { ring($0) }
            try await withThrowingTaskGroup(of: Void.self) { group in
                for ring in rings { group.addTask { try await ring.refresh(now: Self.start) } }
                try await group.waitForAll()
            }
            let signing = try Set(rings.map { try $0.signingKey().keyID })
            #expect(signing.count == 1)
            #expect(try await storages[0].signingKeys.signingKeys().count == 1)
            // Rotating at once, too.
            let due = Self.start.addingTimeInterval(86_400)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for ring in rings { group.addTask { try await ring.refresh(now: due) } }
                try await group.waitForAll()
            }
            #expect(try await storages[0].signingKeys.signingKeys().count == 2)
            #expect(Set(rings.compactMap { $0.keys?.published.map(\.keyID) }).count == 1)
        }
    }

    @Test(arguments: StoreBackend.available)
    func aKeyThisInstanceCannotOpenIsNeitherUsedNorPublished(backend: StoreBackend) async throws {
        try await backend.withStorage { storages in
            let other = ring(storages[0], secret: String(repeating: "o", count: 40))
            try await other.refresh(now: Self.start)
            let foreign = try other.signingKey().keyID
            // Under another GATEWAY_ENCRYPTION_KEY the stored key does not open: this instance makes its own.
            let ring = ring(storages[0])
            try await ring.refresh(now: Self.start.addingTimeInterval(1))
            #expect(try ring.signingKey().keyID != foreign)
            #expect(ring.keys?.published.map(\.keyID).contains(foreign) == false)
            // A sealed key moved to another row's id does not open either.
            var stored = try #require(try await storages[0].signingKeys.signingKeys().last)
            stored.id = "moved"
            _ = try await storages[0].signingKeys.insert(
                signingKey: stored, unlessCreatedAfter: Self.start.addingTimeInterval(10))
            let fresh = self.ring(storages[0])
            try await fresh.refresh(now: Self.start.addingTimeInterval(2))
            #expect(fresh.keys?.published.map(\.keyID).contains("moved") == false)
        }
    }

    @Test func aMinterWithoutKeysFailsAsAToolErrorNotACrash() async throws {
        let database = try SQLiteSchema.inMemory()
        let ring = ring(.sqlite(database))
        let minter = DownstreamTokenMinter(
            issuer: "https://mcp.example.com", subjectIssuer: "https://idp.example.com/", audience: "urn:todos-api",
            lifetime: 300, keys: ring,
            clock: ManualClock(Self.start))
        let credential = MintedCredential(
            minter: minter, principal: DownstreamPrincipal(subject: "u"), granted: ["read:todos"])
        await #expect(throws: APIFailure.gatewayUnavailable) {
            _ = try await credential.credential(scope: ["read:todos"], audience: nil)
        }
        await #expect(throws: APIFailure.forbidden("this connection was not granted the write:todos scope")) {
            _ = try await credential.credential(scope: ["write:todos"], audience: nil)
        }
    }
}
