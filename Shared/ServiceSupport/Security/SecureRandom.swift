import Crypto

/// Unguessable bytes from the system's cryptographically secure generator; ``SystemRandomSource`` makes tokens of
/// them.
public enum SecureRandom {
    /// `byteCount` random bytes from the system's generator, eight bytes per call (not a call per byte).
    public static func bytes(_ byteCount: Int) -> [UInt8] {
        guard byteCount > 0 else { return [] }
        return SymmetricKey(size: SymmetricKeySize(bitCount: byteCount * 8)).withUnsafeBytes { Array($0) }
    }
}
