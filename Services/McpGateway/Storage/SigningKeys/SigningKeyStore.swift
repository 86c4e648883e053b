import Foundation
import JWTAuth

/// The keys the gateway signs downstream tokens with (``SigningKeyRing``), private halves sealed. Shared by every
/// instance, so that each publishes the keys any of them signs with.
protocol SigningKeyStore: Sendable {
    /// Every stored key, oldest first.
    func signingKeys() async throws -> [StoredSigningKey]
    /// Adds `key` unless a key created after `unlessCreatedAfter` exists (another instance rotated first): of several
    /// instances rotating at once, one adds a key. Whether `key` was added.
    func insert(signingKey key: StoredSigningKey, unlessCreatedAfter: Date) async throws -> Bool
    /// Deletes the keys with these ids (retired keys; already deleted ones are ignored).
    func deleteSigningKeys(ids: [String]) async throws
}
