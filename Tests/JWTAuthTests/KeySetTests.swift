import Foundation
import JSON
import JWTKit
import Logging
import TestSupport
import Testing

@testable import JWTAuth

@Suite("Key sets and signing keys")
struct KeySetTests {
    @Test func parsesUsableKeysAndSkipsTheRest() async throws {
        let good = try await TestKeys.primary
        let other = try await TestKeys.secondary
        var encrypting = other.publicJWK
        encrypting["use"] = "enc"
        encrypting["kid"] = "encryption-key"
        var noKid = other.publicJWK
        noKid.removeValue(forKey: "kid")
        var hmacOnly = other.publicJWK
        hmacOnly["kid"] = "hs-key"
        hmacOnly["alg"] = "HS256"
        let smallModulus = Base64URL.encode([0xC1] + (0..<127).map { UInt8($0 | 1) })
        let extra: [JSONValue] = [
            [
                "kty": "EC", "kid": "ec-key", "crv": "P-256", "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
                "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
            ],
            ["kty": "oct", "kid": "shared-secret", "k": "c2VjcmV0"],
            ["kty": "RSA", "kid": "small-key", "n": .string(smallModulus), "e": "AQAB"],
            ["kty": "RSA", "kid": "broken", "n": "!!!", "e": "AQAB"],
            .object(encrypting), .object(noKid), .object(hmacOnly), "not a key", ["kid": "no-kty"],
        ]
        let logs = LogCapture()
        let set = try await KeySet.parse(jwks: TestKeys.jwks([good], extra: extra), logger: logs.logger)
        #expect(set.keyIDs == [good.keyID])
        // A key without kid is kept apart, for ID tokens that name no key either (see IDTokenKeyTests).
        #expect(set.unnamedKeys.count == 1)
        #expect(logs.count(atLeast: .debug) == extra.count - 1)
        #expect(logs.count(atLeast: .info) == 0)
    }

    @Test func refusesDocumentsThatAreNotKeySets() async {
        for document in ["", "[]", #"{"keys": {}}"#, "<html>", #"{"key": []}"#] {
            await #expect(throws: KeySetError.notAKeySet) { try await KeySet.parse(jwks: Array(document.utf8)) }
        }
        await #expect(throws: KeySetError.noUsableKeys) {
            try await KeySet.parse(jwks: Array(#"{"keys": [{"kty":"EC","kid":"a"}]}"#.utf8))
        }
    }

    @Test func thumbprintMatchesRFC7638Example() throws {
        let n =
            "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
        let key = try JWTKit.Insecure.RSA.PublicKey(modulus: n, exponent: "AQAB")
        #expect(try RSASigningKey.thumbprint(of: key) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs")
    }

    @Test func publicJWKHasWhatAVerifierNeeds() async throws {
        let key = try await TestKeys.primary
        let jwk = key.publicJWK
        #expect(jwk["kty"] == "RSA")
        #expect(jwk["alg"] == "RS256")
        #expect(jwk["use"] == "sig")
        #expect(jwk["kid"] == .string(key.keyID))
        #expect(jwk["e"] == "AQAB")
        #expect(jwk["d"] == nil)
        let parsed = try await KeySet.parse(jwks: TestKeys.jwks([key]))
        #expect(parsed[key.keyID]?.modulusBits == 2048)
    }

    @Test func pemRoundTripKeepsTheKeyID() async throws {
        let key = try await TestKeys.primary
        let reloaded = try await RSASigningKey(pem: key.pemRepresentation)
        #expect(reloaded.keyID == key.keyID)
        let token = try reloaded.sign(TestTokens.claims())
        let verifier = JWTVerifier(
            configuration: .init(issuer: TestTokens.issuer, audiences: [TestTokens.audience]),
            keys: KeySet([try await key.verificationKey()]), clock: ManualClock(TestTokens.now))
        #expect(try await verifier.verify(token).subject == "auth0|alice")
    }

    @Test func keyFileIsCreatedOnceAndReused() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(UUID().uuidString)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("keys/signing.pem").path
        let first = try await SigningKeyFile.loadOrCreate(at: path)
        let second = try await SigningKeyFile.loadOrCreate(at: path)
        #expect(first.keyID == second.keyID)
        let permissions = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
        #expect(permissions == 0o600)
        try "garbage".write(toFile: path, atomically: true, encoding: .utf8)
        await #expect(throws: (any Error).self) { try await SigningKeyFile.loadOrCreate(at: path) }
    }

    @Test func base64URLIsStrict() {
        #expect(Base64URL.decode("AQAB") == [1, 0, 1])
        #expect(Base64URL.decode("AQA") == [1, 0])
        #expect(Base64URL.decode("AQAB=") == nil)
        #expect(Base64URL.decode("AQ+B") == nil)
        #expect(Base64URL.decode("A") == nil)
        #expect(Base64URL.encode([0xFB, 0xFF]) == "-_8")
    }

    @Test func base64URLEncodingIsRFC4648sAndDecodesBack() {
        // RFC 4648 §10's vectors, unpadded.
        for (text, encoded) in [("", ""), ("f", "Zg"), ("fo", "Zm8"), ("foo", "Zm9v"), ("foob", "Zm9vYg"),
                                ("fooba", "Zm9vYmE"), ("foobar", "Zm9vYmFy")] {
            #expect(Base64URL.encode(Array(text.utf8)) == encoded)
        }
        // Every length up to 70, and all 256 byte values: the URL alphabet, and the bytes back.
        var generator = SystemRandomNumberGenerator()
        for length in 0...70 {
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let encoded = Base64URL.encode(bytes)
            #expect(encoded.utf8.count == (length * 4 + 2) / 3)
            #expect(encoded.allSatisfy { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" })
            #expect(Base64URL.decode(encoded) == bytes)
        }
        #expect(Base64URL.encode((0...255).map { UInt8($0) }).utf8.count == 342)
        #expect(Base64URL.decode(Base64URL.encode((0...255).map { UInt8($0) })) == (0...255).map { UInt8($0) })
    }
}
