import Crypto
import Foundation
import JWTAuth

/// Server-provided DPoP nonces (RFC 9449 §8, §9) that need no storage and hold across instances: a nonce is a time
/// window and an HMAC of it under a key every instance derives from the same secret. A nonce of the current or the
/// previous window is accepted, so each lives five to ten minutes.
struct DPoPNonces: Sendable {
    static let window: TimeInterval = 300
    private let key: SymmetricKey

    init(secret: String) {
        key = HKDF<SHA256>.deriveKey(
            inputKeyMaterial: SymmetricKey(data: Data(secret.utf8)), salt: Data("mcp-gateway".utf8),
            info: Data("dpop-nonce v1".utf8), outputByteCount: 32)
    }

    /// The nonce of the window `now` falls in.
    func current(at now: Date) -> String { nonce(window: Self.windowNumber(now)) }

    func isValid(_ nonce: String, at now: Date) -> Bool {
        let window = Self.windowNumber(now)
        return [window, window - 1].contains { candidate in
            let expected = Array(self.nonce(window: candidate).utf8)
            let given = Array(nonce.utf8)
            return expected.count == given.count && zip(expected, given).reduce(0) { $0 | ($1.0 ^ $1.1) } == 0
        }
    }

    private func nonce(window: Int64) -> String {
        var bytes = withUnsafeBytes(of: window.bigEndian) { Array($0) }
        bytes += HMAC<SHA256>.authenticationCode(for: bytes, using: key).prefix(16)
        return Base64URL.encode(bytes)
    }

    private static func windowNumber(_ date: Date) -> Int64 {
        Int64((date.timeIntervalSince1970 / window).rounded(.down))
    }
}
