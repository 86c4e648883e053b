import Foundation
import JSON
import JWTAuth
import Logging
import Synchronization

/// The RSA keys the gateway signs downstream tokens with, kept in the database (``SigningKeyStore``) so that every
/// instance signs with, and publishes, the same keys.
///
/// Rotation never leaves a verifier without the key a token names:
/// - a new key is made `rotation − lead` after the newest one, and published at once (`/.well-known/jwks.json`);
/// - it signs only from `lead` after it was made (an hour, or a quarter of the rotation if shorter), so that every
///   instance has loaded it and every verifier that caches the key set has had time to fetch it again;
/// - the key it replaced stays published until every token it signed has expired (`retention` after the new key took
///   over), and is then deleted.
/// The first key of a new database signs at once: no verifier can have cached a key set without it.
///
/// ``SigningKeyRotation`` calls ``refresh(now:)`` periodically on every instance; of several instances due to rotate
/// at once, one adds the key (``SigningKeyStore/insert(signingKey:unlessCreatedAfter:)``), the others load it.
final class SigningKeyRing: Sendable {
    struct Schedule: Sendable {
        /// How often a new key is made.
        var rotation: TimeInterval
        /// How long a replaced key is still published once its successor signs: the longest lifetime of a token it
        /// signed, plus the verifiers' clock leeway.
        var retention: TimeInterval
        /// How long a new key is published before it signs.
        var lead: TimeInterval { min(3600, rotation / 4) }
        /// How often instances look for keys another instance made: well within `lead`.
        var reload: Duration { .seconds(max(1, min(300, lead / 4))) }
    }

    /// The loaded keys: the one that signs, and every one published.
    struct Keys: Sendable {
        let signing: RSASigningKey
        let published: [RSASigningKey]
        /// The JWKS document, serialized once per change.
        let document: [UInt8]
    }

    enum Failure: Error, CustomStringConvertible {
        case noKey
        var description: String { "no signing key is loaded yet" }
    }

    let schedule: Schedule
    private let store: any SigningKeyStore
    private let cipher: TokenCipher
    private let logger: Logger
    private let current = Mutex<Keys?>(nil)
    /// Decrypted keys by id, so that a reload parses and checks only keys it has not seen.
    private let opened = Mutex<[String: RSASigningKey]>([:])

    init(store: any SigningKeyStore, cipher: TokenCipher, schedule: Schedule, logger: Logger) {
        self.store = store
        self.cipher = cipher
        self.schedule = schedule
        self.logger = logger
    }

    /// The keys as last loaded; `nil` before the first successful ``refresh(now:)``.
    var keys: Keys? { current.withLock { $0 } }

    /// The key that signs now.
    func signingKey() throws -> RSASigningKey {
        guard let keys else { throw Failure.noKey }
        return keys.signing
    }

    /// Loads the stored keys; makes a new key when none can be used or the newest is due for rotation, and deletes
    /// keys whose tokens have all expired.
    func refresh(now: Date) async throws {
        var stored = try await store.signingKeys()
        var usable = await open(stored)
        let newest = usable.last?.created
        if newest == nil || newest! <= now.addingTimeInterval(-(schedule.rotation - schedule.lead)) {
            // The first key of a database is added only if no instance added one meanwhile. When stored keys exist but
            // none opens here (another GATEWAY_ENCRYPTION_KEY), this instance adds its own.
            let threshold =
                stored.isEmpty
                ? Date.distantPast
                : newest == nil ? now : now.addingTimeInterval(-(schedule.rotation - schedule.lead))
            let key = try await RSASigningKey.generate()
            if try await store.insert(
                signingKey: try Self.stored(key, cipher: cipher, createdAt: now), unlessCreatedAfter: threshold)
            {
                logger.notice(
                    "New signing key for downstream tokens",
                    metadata: [
                        "jwt.kid": "\(key.keyID)",
                        "signs_from": "\(now.addingTimeInterval(newest == nil ? 0 : schedule.lead))",
                    ])
            }
            stored = try await store.signingKeys()
            usable = await open(stored)
        }
        let retired = Self.retired(
            stored.map { ($0.id, $0.createdAt) }, successors: usable.map(\.created), now: now, schedule: schedule)
        if !retired.isEmpty {
            try await store.deleteSigningKeys(ids: retired)
            logger.notice("Signing keys retired: their tokens have expired", metadata: ["jwt.kid": "\(retired)"])
            usable.removeAll { retired.contains($0.key.keyID) }
        }
        guard let signing = Self.signing(usable.map { ($0.key, $0.created) }, now: now, schedule: schedule) else {
            throw Failure.noKey
        }
        let published = usable.map(\.key)
        if let loaded = keys, loaded.signing.keyID == signing.keyID,
            loaded.published.map(\.keyID) == published.map(\.keyID)
        {
            return
        }
        let document = JSONValue.object(["keys": .array(published.map { .object($0.publicJWK) })]).serialized()
        current.withLock { $0 = Keys(signing: signing, published: published, document: document) }
    }

    /// The keys this instance can open, oldest first; one it cannot (sealed under a `GATEWAY_ENCRYPTION_KEY` it does
    /// not have) is logged and left to the instances that can.
    private func open(_ stored: [StoredSigningKey]) async -> [(key: RSASigningKey, created: Date)] {
        var result: [(key: RSASigningKey, created: Date)] = []
        for entry in stored {
            if let known = opened.withLock({ $0[entry.id] }) {
                result.append((known, entry.createdAt))
                continue
            }
            do {
                let pem = try cipher.open(entry.privateKey, context: Self.context(entry.id))
                let key = try await RSASigningKey(pem: pem)
                guard key.keyID == entry.id else { throw TokenCipher.Failure.tampered }
                opened.withLock { $0[entry.id] = key }
                result.append((key, entry.createdAt))
            } catch {
                logger.warning(
                    "A stored signing key cannot be opened; it is not used or published by this instance",
                    metadata: ["jwt.kid": "\(entry.id)", "error": "\(error)"])
            }
        }
        return result
    }

    /// The newest key that has been published for `lead`, or the oldest key when none has (a new database).
    static func signing<Key>(_ keys: [(Key, Date)], now: Date, schedule: Schedule) -> Key? {
        keys.last(where: { $0.1 <= now.addingTimeInterval(-schedule.lead) })?.0 ?? keys.first?.0
    }

    /// The ids of the keys older than a successor that has signed for longer than `retention`. Only keys this
    /// instance can use count as successors: it never deletes the key it signs with.
    static func retired(
        _ keys: [(id: String, created: Date)], successors: [Date], now: Date, schedule: Schedule
    ) -> [String] {
        guard
            let successor = successors.last(where: { $0.addingTimeInterval(schedule.lead + schedule.retention) <= now })
        else { return [] }
        return keys.filter { $0.created < successor }.map(\.id)
    }

    /// `key` as it is stored: its private half sealed under the current `GATEWAY_ENCRYPTION_KEY`.
    static func stored(_ key: RSASigningKey, cipher: TokenCipher, createdAt: Date) throws -> StoredSigningKey {
        StoredSigningKey(
            id: key.keyID, privateKey: try cipher.seal(key.pemRepresentation, context: context(key.keyID)),
            createdAt: createdAt)
    }

    /// The authenticated data a key is sealed with: a sealed key moved to another row does not open.
    private static func context(_ keyID: String) -> String { "signing-key:" + keyID }
}
