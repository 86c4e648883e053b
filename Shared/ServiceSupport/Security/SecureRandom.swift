import JWTAuth

/// Unguessable values from the system's cryptographically secure generator.
public enum SecureRandom {
    /// `byteCount` random bytes.
    public static func bytes(_ byteCount: Int) -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return (0..<byteCount).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
    }

    /// A base64url token of `byteCount` random bytes (32 bytes = 256 bits by default), optionally prefixed so that
    /// secret scanners can recognise it.
    public static func token(byteCount: Int = 32, prefix: String = "") -> String {
        prefix + Base64URL.encode(bytes(byteCount))
    }
}
