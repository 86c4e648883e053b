import Foundation
import Testing

@testable import McpGateway

@Suite("Upstream token encryption")
struct TokenCipherTests {
    @Test func roundTripAndTamperDetection() throws {
        let cipher = TokenCipher(secret: String(repeating: "a", count: 40))
        let sealed = try cipher.seal("upstream-access-token", context: "access:g1")
        #expect(try cipher.open(sealed, context: "access:g1") == "upstream-access-token")
        #expect(sealed.combined.range(of: Data("upstream-access-token".utf8)) == nil)
        var tampered = sealed
        tampered.combined[tampered.combined.count - 1] ^= 0x01
        #expect(throws: TokenCipher.Failure.tampered) { try cipher.open(tampered, context: "access:g1") }
        #expect(throws: TokenCipher.Failure.tampered) { try cipher.open(sealed, context: "access:g2") }
    }

    @Test func keysRotate() throws {
        let old = TokenCipher(secret: String(repeating: "o", count: 40))
        let sealedWithOld = try old.seal("token", context: "c")
        let rotated = TokenCipher(
            secret: String(repeating: "n", count: 40), previousSecrets: [String(repeating: "o", count: 40)])
        #expect(try rotated.open(sealedWithOld, context: "c") == "token")
        #expect(try rotated.seal("token", context: "c").keyID == rotated.current.id)
        #expect(rotated.current.id != old.current.id)
        let forgotten = TokenCipher(secret: String(repeating: "n", count: 40))
        #expect(throws: TokenCipher.Failure.unknownKey(old.current.id)) {
            try forgotten.open(sealedWithOld, context: "c")
        }
    }
}
