import Crypto
import Foundation
import JWTAuth

/// Proof Key for Code Exchange (RFC 7636), S256 only: `plain` gives no protection against a stolen code.
public enum PKCE {
    /// A new code verifier: 32 random bytes, base64url (43 characters).
    public static func makeVerifier(using random: any RandomSource = SystemRandomSource()) -> String {
        random.token(byteCount: 32)
    }

    /// The S256 challenge of `verifier`: `BASE64URL(SHA256(ASCII(verifier)))`.
    public static func challenge(for verifier: String) -> String {
        Base64URL.encode(SHA256.hash(data: Data(verifier.utf8)))
    }

    /// Whether `verifier` is 43–128 characters of the unreserved set (RFC 7636 §4.1).
    public static func isWellFormedVerifier(_ verifier: String) -> Bool {
        (43...128).contains(verifier.utf8.count) && verifier.utf8.allSatisfy(isUnreserved)
    }

    /// Whether `challenge` can be an S256 challenge: 43 base64url characters (a SHA-256 digest).
    public static func isWellFormedS256Challenge(_ challenge: String) -> Bool {
        challenge.utf8.count == 43 && Base64URL.decode(challenge)?.count == 32
    }

    /// Whether `verifier` is well formed and hashes to `challenge`, compared in constant time.
    public static func verify(_ verifier: String, challenge: String) -> Bool {
        isWellFormedVerifier(verifier)
            && SecretDigest.constantTimeEqual(Array(self.challenge(for: verifier).utf8), Array(challenge.utf8))
    }

    private static func isUnreserved(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
            UInt8(ascii: "~"):
            true
        default: false
        }
    }
}
