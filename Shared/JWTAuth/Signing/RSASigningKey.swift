import Crypto
import CryptoExtras
import Foundation
import JSON
import JWTKit
import Resilience

/// An RSA private key that signs JWTs, for the development identity provider and for tests.
///
/// Its `kid` is the RFC 7638 thumbprint of the public key, so the same key always has the same `kid`.
public struct RSASigningKey: Sendable {
    /// The key's `kid`: the base64url SHA-256 JWK thumbprint (RFC 7638).
    public let keyID: String
    /// The algorithm it signs with.
    public let algorithm: SignatureAlgorithm
    private let privateKey: JWTKit.Insecure.RSA.PrivateKey
    private let signer: any JWTAlgorithm

    /// Wraps an existing private key.
    public init(privateKey: JWTKit.Insecure.RSA.PrivateKey, algorithm: SignatureAlgorithm = .rs256) async throws {
        self.privateKey = privateKey
        self.algorithm = algorithm
        self.signer = try await algorithm.makeJWTKitAlgorithm(key: privateKey)
        self.keyID = try Self.thumbprint(of: privateKey.publicKey)
    }

    /// Loads a PEM-encoded RSA private key (PKCS#1 or PKCS#8).
    public init(pem: String, algorithm: SignatureAlgorithm = .rs256) async throws {
        try await self.init(privateKey: JWTKit.Insecure.RSA.PrivateKey(pem: pem), algorithm: algorithm)
    }

    /// Generates a new key of `bits` bits (2048 by default; 3072 and 4096 are also accepted).
    public static func generate(bits: Int = 2048, algorithm: SignatureAlgorithm = .rs256) async throws
        -> RSASigningKey
    {
        let size: _RSA.Signing.KeySize =
            switch bits {
            case 4096: .bits4096
            case 3072: .bits3072
            default: .bits2048
            }
        // Seconds of CPU in a debug build: off the cooperative pool (Offload).
        let backing = try await Offload.run { try _RSA.Signing.PrivateKey(keySize: size) }
        return try await RSASigningKey(
            privateKey: JWTKit.Insecure.RSA.PrivateKey(backing: backing), algorithm: algorithm)
    }

    /// The private key in PEM, for saving.
    public var pemRepresentation: String { privateKey.pemRepresentation }

    /// The public half as a JWK with `kty`, `n`, `e`, `alg`, `use: sig` and `kid`, ready for a JWKS document.
    public var publicJWK: [String: JSONValue] {
        let (n, e) = Self.components(of: privateKey.publicKey)
        return [
            "kty": "RSA", "n": .string(n), "e": .string(e), "alg": .string(algorithm.rawValue), "use": "sig",
            "kid": .string(keyID),
        ]
    }

    /// The public half as a key a ``JWTVerifier`` can use.
    public func verificationKey() async throws -> VerificationKey {
        try await VerificationKey(keyID: keyID, publicKey: privateKey.publicKey, algorithms: [algorithm])
    }

    /// Signs `claims` into a compact JWS with header `{"alg", "kid", "typ"}`.
    ///
    /// - Parameters:
    ///   - claims: The payload.
    ///   - type: The `typ` header; `JWT` by default, `at+jwt` for RFC 9068 access tokens.
    ///   - extraHeader: More header members, merged over the defaults (tests use this to forge headers).
    public func sign(_ claims: [String: JSONValue], type: String? = "JWT", extraHeader: [String: JSONValue] = [:])
        throws -> String
    {
        var header: [String: JSONValue] = ["alg": .string(algorithm.rawValue), "kid": .string(keyID)]
        if let type { header["typ"] = .string(type) }
        header.merge(extraHeader) { _, new in new }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return try sign(headerJSON: Array(encoder.encode(header)), payloadJSON: Array(encoder.encode(claims)))
    }

    /// Signs raw header and payload bytes, which need not be JSON (tests forge malformed tokens with this).
    func sign(headerJSON: [UInt8], payloadJSON: [UInt8]) throws -> String {
        let signingInput = Base64URL.encode(headerJSON) + "." + Base64URL.encode(payloadJSON)
        let signature = try signer.sign(Array(signingInput.utf8))
        return signingInput + "." + Base64URL.encode(signature)
    }

    /// RFC 7638 thumbprint: SHA-256 over `{"e":…,"kty":"RSA","n":…}` with members in lexicographic order.
    static func thumbprint(of publicKey: JWTKit.Insecure.RSA.PublicKey) throws -> String {
        let (n, e) = components(of: publicKey)
        let canonical = #"{"e":"\#(e)","kty":"RSA","n":"\#(n)"}"#
        return Base64URL.encode(SHA256.hash(data: Data(canonical.utf8)))
    }

    /// `n` and `e`, base64url-encoded without leading zero octets (RFC 7518 §6.3.1).
    static func components(of publicKey: JWTKit.Insecure.RSA.PublicKey) -> (n: String, e: String) {
        guard let primitives = try? publicKey.getKeyPrimitives() else { return ("", "") }
        let n = primitives.modulus.drop(while: { $0 == 0 })
        let e = primitives.publicExponent.drop(while: { $0 == 0 })
        return (Base64URL.encode(n), Base64URL.encode(e))
    }
}
