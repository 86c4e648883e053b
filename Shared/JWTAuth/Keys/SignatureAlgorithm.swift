import JWTKit

/// The JWS algorithms this library can verify: the RSA family (RFC 7518 §3.3 and §3.5), and ES256 (§3.4) for ID tokens
/// of providers that sign with P-256. Signing is RSA only.
///
/// Only the algorithm objects of jwt-kit are used, one per key and algorithm, never its key collection's key selection:
/// `JWTKeyCollection` falls back to a default key when a token names an unknown `kid`, and locks a JWK without `alg` to
/// the first algorithm it sees. This library picks the key by `kid` itself and checks `alg` against an allow-list
/// before any signature is computed.
public struct SignatureAlgorithm: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: String
    public init?(rawValue: String) {
        guard Self.all.contains(where: { $0.rawValue == rawValue }) else { return nil }
        self.rawValue = rawValue
    }
    private init(_ name: String) { self.rawValue = name }

    /// RSASSA-PKCS1-v1_5 with SHA-256: what Auth0, Okta, Cloudflare Access and most OIDC providers sign with.
    public static let rs256 = Self("RS256")
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    public static let rs384 = Self("RS384")
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    public static let rs512 = Self("RS512")
    /// RSASSA-PSS with SHA-256.
    public static let ps256 = Self("PS256")
    /// RSASSA-PSS with SHA-384.
    public static let ps384 = Self("PS384")
    /// RSASSA-PSS with SHA-512.
    public static let ps512 = Self("PS512")

    /// ECDSA on P-256 with SHA-256.
    public static let es256 = Self("ES256")

    /// Every supported algorithm.
    public static let all: [SignatureAlgorithm] = [.rs256, .rs384, .rs512, .ps256, .ps384, .ps512, .es256]

    /// The JWK `kty` of the keys this algorithm uses.
    public var keyType: String { self == .es256 ? "EC" : "RSA" }

    public var description: String { rawValue }

    /// A jwt-kit algorithm object bound to `key` (public for verifying, private for signing too).
    func makeJWTKitAlgorithm(key: some RSAKey) async throws -> any JWTAlgorithm {
        let kid = JWKIdentifier(string: "key")
        let collection = JWTKeyCollection()
        switch rawValue {
        case "RS256": await collection.add(rsa: key, digestAlgorithm: .sha256, kid: kid)
        case "RS384": await collection.add(rsa: key, digestAlgorithm: .sha384, kid: kid)
        case "RS512": await collection.add(rsa: key, digestAlgorithm: .sha512, kid: kid)
        case "PS256": await collection.add(pss: key, digestAlgorithm: .sha256, kid: kid)
        case "PS384": await collection.add(pss: key, digestAlgorithm: .sha384, kid: kid)
        default: await collection.add(pss: key, digestAlgorithm: .sha512, kid: kid)
        }
        return try await collection.getKey(for: kid)
    }
}
