import JWTKit

/// A public signing key of an issuer, with the algorithms it may verify.
public struct VerificationKey: Sendable {
    /// The key's `kid`; empty for a key published without one.
    public let keyID: String
    /// The algorithms this key verifies: the JWK's own `alg` when it has one, else every allowed algorithm.
    public let algorithms: Set<SignatureAlgorithm>
    /// The RSA modulus size in bits (256 for a P-256 key).
    public let modulusBits: Int
    private let verifiers: [SignatureAlgorithm: any JWTAlgorithm]

    /// The smallest RSA modulus accepted (NIST SP 800-57: 2048 bits).
    public static let minimumModulusBits = 2048

    /// Creates a verification key from an RSA public key.
    ///
    /// - Throws: ``KeySetError`` when the key is smaller than 2048 bits or no algorithm is left to use it with.
    public init(keyID: String, publicKey: Insecure.RSA.PublicKey, algorithms: Set<SignatureAlgorithm>) async throws {
        let modulus = try publicKey.getKeyPrimitives().modulus
        let bits = Self.bitLength(of: modulus)
        guard bits >= Self.minimumModulusBits else { throw KeySetError.keyTooSmall(bits: bits) }
        guard !algorithms.isEmpty, algorithms.allSatisfy({ $0.keyType == "RSA" }) else {
            throw KeySetError.noUsableAlgorithm
        }
        var verifiers: [SignatureAlgorithm: any JWTAlgorithm] = [:]
        for algorithm in algorithms {
            verifiers[algorithm] = try await algorithm.makeJWTKitAlgorithm(key: publicKey)
        }
        self.keyID = keyID
        self.algorithms = algorithms
        self.modulusBits = bits
        self.verifiers = verifiers
    }

    /// Creates an ES256 verification key from a P-256 public key.
    public init(keyID: String, publicKey: ES256PublicKey) async throws {
        let collection = JWTKeyCollection()
        let kid = JWKIdentifier(string: "key")
        await collection.add(ecdsa: publicKey, kid: kid)
        self.keyID = keyID
        self.algorithms = [.es256]
        self.modulusBits = 256
        self.verifiers = [.es256: try await collection.getKey(for: kid)]
    }

    /// Whether `signature` is a valid `algorithm` signature of `signingInput` by this key. `false` when the key may
    /// not be used with `algorithm`.
    public func isValidSignature(
        _ signature: [UInt8], of signingInput: some Collection<UInt8>,
        algorithm: SignatureAlgorithm
    ) -> Bool {
        guard let verifier = verifiers[algorithm] else { return false }
        return (try? verifier.verify(signature, signs: Array(signingInput))) ?? false
    }

    static func bitLength(of bigEndian: some Collection<UInt8>) -> Int {
        guard let first = bigEndian.firstIndex(where: { $0 != 0 }) else { return 0 }
        let significant = bigEndian.distance(from: first, to: bigEndian.endIndex)
        return significant * 8 - bigEndian[first].leadingZeroBitCount
    }
}

/// Why a JWKS or one of its keys was not usable.
///
/// A struct over a private enum, as async-http-client's `HTTPClientError`: compare a thrown error with the constants
/// (`error == .noUsableKeys`); new reasons can be added without breaking anyone's exhaustive `switch`.
public struct KeySetError: Error, Hashable, Sendable, CustomStringConvertible {
    private enum Reason: Hashable, Sendable {
        case notAKeySet
        case noUsableKeys
        case keyTooSmall(bits: Int)
        case noUsableAlgorithm
    }

    private let reason: Reason

    /// The document is not a JSON object with a `keys` array.
    public static let notAKeySet = KeySetError(reason: .notAKeySet)
    /// The document holds no key this library can use.
    public static let noUsableKeys = KeySetError(reason: .noUsableKeys)
    /// An RSA key under 2048 bits.
    public static func keyTooSmall(bits: Int) -> KeySetError { KeySetError(reason: .keyTooSmall(bits: bits)) }
    /// A key whose `alg` is not in the allow-list.
    public static let noUsableAlgorithm = KeySetError(reason: .noUsableAlgorithm)

    public var description: String {
        switch reason {
        case .notAKeySet: "the document is not a JWK Set (no 'keys' array)"
        case .noUsableKeys: "the JWK Set contains no usable RSA signing key"
        case .keyTooSmall(let bits): "RSA key of \(bits) bits is under the 2048-bit minimum"
        case .noUsableAlgorithm: "the key's algorithm is not allowed"
        }
    }
}
