import Crypto
import Foundation

/// SHA-256 digests of secrets (tokens, codes, client secrets), so that only digests are stored, and a constant-time
/// comparison for them.
public enum SecretDigest {
    /// The SHA-256 digest of `secret`, hex-encoded: the form a secret is stored and looked up in.
    public static func hex(_ secret: String) -> String {
        var secret = secret
        let digest = secret.withUTF8 { SHA256.hash(data: UnsafeRawBufferPointer($0)) }
        return hexString(digest)
    }

    /// Lower-case hexadecimal of `bytes` (no `String(format:)`, which costs microseconds per byte).
    public static func hexString(_ bytes: some Sequence<UInt8>) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var text: [UInt8] = []
        text.reserveCapacity(64)
        for byte in bytes {
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: text, as: UTF8.self)
    }

    /// Whether `secret` hashes to `digest`, compared in constant time.
    public static func matches(_ secret: String, digest: String) -> Bool {
        constantTimeEqual(Array(hex(secret).utf8), Array(digest.utf8))
    }

    /// Compares two byte strings in time that depends only on their lengths.
    public static func constantTimeEqual(_ lhs: [UInt8], _ rhs: [UInt8]) -> Bool {
        guard lhs.count == rhs.count else { return false }
        var difference: UInt8 = 0
        for index in lhs.indices { difference |= lhs[index] ^ rhs[index] }
        return difference == 0
    }
}
