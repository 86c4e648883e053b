import Crypto
import Foundation
import ServiceSupport

/// Encrypts upstream tokens (and PKCE verifiers) at rest with AES-256-GCM.
///
/// The key is derived with HKDF-SHA256 from `GATEWAY_ENCRYPTION_KEY`; every ciphertext is stored with the id of the key
/// that sealed it, so the secret can be rotated: put the old secret in `GATEWAY_ENCRYPTION_KEYS_OLD`, and it decrypts
/// existing rows while new rows use the new key. The `context` (the grant id, for example) is authenticated data: a
/// ciphertext moved to another row does not decrypt.
struct TokenCipher: Sendable {
    struct Key: Sendable {
        let id: String
        let key: SymmetricKey
    }

    enum Failure: Error, Equatable, CustomStringConvertible {
        case unknownKey(String)
        case tampered

        var description: String {
            switch self {
            case .unknownKey(let id):
                "no configured key has id \(id): is an old GATEWAY_ENCRYPTION_KEY missing from GATEWAY_ENCRYPTION_KEYS_OLD?"
            case .tampered: "the ciphertext does not authenticate"
            }
        }
    }

    let current: Key
    private let keys: [String: Key]

    /// The ids of every configured key, current and old.
    var keyIDs: Set<String> { Set(keys.keys) }

    init(secret: String, previousSecrets: [String] = []) {
        let current = Self.derive(secret)
        self.current = current
        var keys = [current.id: current]
        for old in previousSecrets.map(Self.derive) where keys[old.id] == nil { keys[old.id] = old }
        self.keys = keys
    }

    func seal(_ plaintext: String, context: String) throws -> SealedValue {
        let box = try AES.GCM.seal(Data(plaintext.utf8), using: current.key, authenticating: Data(context.utf8))
        guard let combined = box.combined else { throw Failure.tampered }
        return SealedValue(keyID: current.id, combined: combined)
    }

    func open(_ sealed: SealedValue, context: String) throws -> String {
        guard let key = keys[sealed.keyID] else { throw Failure.unknownKey(sealed.keyID) }
        do {
            let box = try AES.GCM.SealedBox(combined: sealed.combined)
            let plaintext = try AES.GCM.open(box, using: key.key, authenticating: Data(context.utf8))
            return String(decoding: plaintext, as: UTF8.self)
        } catch {
            throw Failure.tampered
        }
    }

    private static func derive(_ secret: String) -> Key {
        let key = HKDF<SHA256>.deriveKey(
            inputKeyMaterial: SymmetricKey(data: Data(secret.utf8)), salt: Data("mcp-gateway".utf8),
            info: Data("upstream-token-encryption v1".utf8), outputByteCount: 32)
        // The id names the key without revealing it: an HMAC of a constant under the key.
        let mac = HMAC<SHA256>.authenticationCode(for: Data("key-id".utf8), using: key)
        return Key(id: SecretDigest.hexString(mac.prefix(6)), key: key)
    }
}
