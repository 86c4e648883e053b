import JWTAuth

/// Where unguessable values come from: the system's generator in production (``SystemRandomSource``), a seeded one
/// in tests that need the same values on every run. Injected wherever a token, code, id or nonce is made, as
/// ``WallClock`` is wherever a decision depends on time.
public protocol RandomSource: Sendable {
    /// `count` random bytes.
    func bytes(_ count: Int) -> [UInt8]
}

extension RandomSource {
    /// A base64url token of `byteCount` random bytes (32 bytes = 256 bits by default), optionally prefixed so that
    /// secret scanners can recognise it.
    public func token(byteCount: Int = 32, prefix: String = "") -> String {
        prefix + Base64URL.encode(bytes(byteCount))
    }
}

/// The system's cryptographically secure generator.
public struct SystemRandomSource: RandomSource {
    public init() {}
    public func bytes(_ count: Int) -> [UInt8] { SecureRandom.bytes(count) }
}
