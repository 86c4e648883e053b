import Crypto
import JWTAuth

/// Unguessable values from the system's cryptographically secure generator.
public enum SecureRandom {
    /// `byteCount` random bytes from the system's generator, eight bytes per call (not a call per byte).
    public static func bytes(_ byteCount: Int) -> [UInt8] {
        guard byteCount > 0 else { return [] }
        return SymmetricKey(size: SymmetricKeySize(bitCount: byteCount * 8)).withUnsafeBytes { Array($0) }
    }

    /// A base64url token of `byteCount` random bytes (32 bytes = 256 bits by default), optionally prefixed so that
    /// secret scanners can recognise it.
    public static func token(byteCount: Int = 32, prefix: String = "") -> String {
        prefix + Base64URL.encode(bytes(byteCount))
    }
}
