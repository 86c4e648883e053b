import Foundation
import JSON
import JWTKit
import Logging

/// The usable signing keys of an issuer, by `kid`.
///
/// Built from a JWK Set document key by key: a key this library cannot or must not use (an EC or `oct` key, RSA under
/// 2048 bits, no `kid`, `use` other than `sig`, an `alg` outside the allow-list, broken numbers, a duplicate `kid`) is
/// skipped with a debug log and never breaks the rest of the set.
public struct KeySet: Sendable {
    /// The keys, by `kid`.
    public let keys: [String: VerificationKey]
    /// Keys published without a `kid` (their ``VerificationKey/keyID`` is empty): usable only for tokens that name no
    /// key either, and only where the verifier allows that (ID tokens, see ``JWTVerifier/Configuration``).
    public let unnamedKeys: [VerificationKey]

    /// Every key of the set.
    public var all: [VerificationKey] { Array(keys.values) + unnamedKeys }

    /// Creates a key set from keys already built.
    public init(_ keys: [VerificationKey]) {
        var byID: [String: VerificationKey] = [:]
        var unnamed: [VerificationKey] = []
        for key in keys {
            if key.keyID.isEmpty {
                unnamed.append(key)
            } else if byID[key.keyID] == nil {
                byID[key.keyID] = key
            }
        }
        self.keys = byID
        self.unnamedKeys = unnamed
    }

    /// The key with this `kid`.
    public subscript(keyID: String) -> VerificationKey? { keys[keyID] }

    /// The `kid`s of the set.
    public var keyIDs: Set<String> { Set(keys.keys) }

    /// Parses a JWK Set document (RFC 7517 §5).
    ///
    /// - Throws: ``KeySetError/notAKeySet`` when the document is not a JWK Set at all, ``KeySetError/noUsableKeys``
    ///   when not one key is usable.
    public static func parse(
        jwks document: some Collection<UInt8>,
        allowedAlgorithms: Set<SignatureAlgorithm> = [.rs256],
        logger: Logger = Logger(label: "JWTAuth.KeySet")
    ) async throws -> KeySet {
        guard let root = try? JSONValue(parsing: document),
            let entries = root.objectValue?["keys"]?.arrayValue
        else { throw KeySetError.notAKeySet }

        var keys: [VerificationKey] = []
        var seen = Set<String>()
        for (index, entry) in entries.enumerated() {
            do {
                let key = try await parseKey(entry, allowedAlgorithms: allowedAlgorithms)
                guard key.keyID.isEmpty || seen.insert(key.keyID).inserted else {
                    logger.debug("Skipping JWK with a duplicate kid", metadata: ["jwks.index": "\(index)"])
                    continue
                }
                keys.append(key)
            } catch {
                logger.debug("Skipping JWK", metadata: ["jwks.index": "\(index)", "jwks.reason": "\(error)"])
            }
        }
        guard !keys.isEmpty else { throw KeySetError.noUsableKeys }
        return KeySet(keys)
    }

    /// One public JWK as a ``VerificationKey`` for the allowed algorithms its `kty` (and `alg`, if any) permit.
    static func parseKey(_ entry: JSONValue, allowedAlgorithms: Set<SignatureAlgorithm>) async throws
        -> VerificationKey
    {
        guard let jwk = entry.objectValue else { throw SkipReason("not a JSON object") }
        guard let kty = jwk["kty"]?.stringValue else { throw SkipReason("no kty") }
        guard kty == "RSA" || kty == "EC" else { throw SkipReason("unsupported key type \(kty)") }
        // A key without `kid` is kept apart (see `unnamedKeys`); a `kid` that is not a non-empty string is broken.
        let kid: String
        switch jwk["kid"] {
        case nil: kid = ""
        case .string(let value) where !value.isEmpty: kid = value
        default: throw SkipReason("kid is not a non-empty string")
        }
        if let use = jwk["use"] {
            guard use.stringValue == "sig" else { throw SkipReason("use is not sig") }
        }
        if let operations = jwk["key_ops"] {
            guard operations.stringArrayValue?.contains("verify") == true else {
                throw SkipReason("key_ops does not include verify")
            }
        }
        var algorithms = allowedAlgorithms.filter { $0.keyType == kty }
        if let alg = jwk["alg"] {
            guard let name = alg.stringValue, let algorithm = SignatureAlgorithm(rawValue: name),
                allowedAlgorithms.contains(algorithm), algorithm.keyType == kty
            else { throw SkipReason("alg \(alg.stringValue ?? "?") is not allowed for a \(kty) key") }
            algorithms = [algorithm]
        }
        guard !algorithms.isEmpty else { throw SkipReason("no allowed algorithm uses \(kty) keys") }
        if kty == "EC" {
            guard jwk["crv"]?.stringValue == "P-256", let x = jwk["x"]?.stringValue, let y = jwk["y"]?.stringValue,
                Base64URL.decode(x)?.count == 32, Base64URL.decode(y)?.count == 32
            else { throw SkipReason("not a P-256 key with 32-byte x and y") }
            return try await VerificationKey(keyID: kid, publicKey: ES256PublicKey(parameters: (x, y)))
        }
        guard let n = jwk["n"]?.stringValue, let e = jwk["e"]?.stringValue else { throw SkipReason("no n or e") }
        // Strict base64url first: jwt-kit's own decoding is lenient about padding and stray characters.
        guard Base64URL.decode(n) != nil, Base64URL.decode(e) != nil else {
            throw SkipReason("n or e is not base64url")
        }
        let publicKey = try Insecure.RSA.PublicKey(modulus: n, exponent: e)
        return try await VerificationKey(keyID: kid, publicKey: publicKey, algorithms: algorithms)
    }

    private struct SkipReason: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }
}
