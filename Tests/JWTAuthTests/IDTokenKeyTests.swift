import Crypto
import Foundation
import JSON
import TestSupport
import Testing

@testable import JWTAuth

/// What OpenID providers written by others do with ID tokens: one key and no `kid`, RS512, ES256, `typ`.
@Suite("ID tokens of other providers")
struct IDTokenKeyTests {
    let clock = ManualClock(TestTokens.now)

    func jwks(_ keys: [[String: JSONValue]]) throws -> [UInt8] {
        Array(try JSONEncoder().encode(["keys": JSONValue.array(keys.map(JSONValue.object))]))
    }

    func unsigned(_ header: [String: JSONValue], _ claims: [String: JSONValue]) throws -> (String, [UInt8]) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let input =
            Base64URL.encode(Array(try encoder.encode(header))) + "."
            + Base64URL.encode(Array(try encoder.encode(claims)))
        return (input, Array(input.utf8))
    }

    func idTokenVerifier(_ keys: KeySet, algorithms: Set<SignatureAlgorithm> = [.rs256]) -> JWTVerifier {
        JWTVerifier(
            configuration: .init(
                issuer: TestTokens.issuer, audiences: [TestTokens.audience], allowedAlgorithms: algorithms,
                cacheCapacity: 0, acceptedTypes: JWTVerifier.idTokenTypes, allowsMissingKeyID: true),
            keys: keys, clock: clock)
    }

    @Test func aTokenWithoutKidVerifiesWithTheOnlyKeyAndOnlyWhereAllowed() async throws {
        let key = try await TestKeys.primary
        var jwk = key.publicJWK
        jwk.removeValue(forKey: "kid")
        let keys = try await KeySet.parse(jwks: try jwks([jwk]))
        #expect(keys.unnamedKeys.count == 1 && keys.keys.isEmpty)
        let token = try key.sign(
            headerJSON: Array(#"{"alg":"RS256","typ":"JWT"}"#.utf8),
            payloadJSON: Array(try JSONEncoder().encode(TestTokens.claims())))
        #expect(try await idTokenVerifier(keys).verify(token).subject == "auth0|alice")

        // Access tokens keep requiring kid.
        let accessVerifier = JWTVerifier(
            configuration: .init(issuer: TestTokens.issuer, audiences: [TestTokens.audience], cacheCapacity: 0),
            keys: keys, clock: clock)
        await #expect(throws: BearerAuthError.missingKeyID) { try await accessVerifier.verify(token) }
    }

    @Test func aTokenWithoutKidIsRefusedWhenSeveralKeysCouldMatch() async throws {
        let first = try await TestKeys.primary
        let second = try await RSASigningKey.generate()
        let keys = try await KeySet.parse(jwks: try jwks([first.publicJWK, second.publicJWK]))
        let token = try first.sign(
            headerJSON: Array(#"{"alg":"RS256"}"#.utf8),
            payloadJSON: Array(try JSONEncoder().encode(TestTokens.claims())))
        await #expect(throws: BearerAuthError.missingKeyID) { try await idTokenVerifier(keys).verify(token) }
    }

    @Test func anAccessTokenIsNotAnIDToken() async throws {
        let key = try await TestKeys.primary
        let keys = KeySet([try await key.verificationKey()])
        let token = try key.sign(TestTokens.claims(), type: "at+jwt")
        await #expect(throws: BearerAuthError.unsupportedTokenType) { try await idTokenVerifier(keys).verify(token) }
        #expect(try await idTokenVerifier(keys).verify(try key.sign(TestTokens.claims())).subject == "auth0|alice")
    }

    @Test func rs512IsAcceptedOnlyWhenConfigured() async throws {
        let key = try await RSASigningKey.generate(algorithm: .rs512)
        var jwk = key.publicJWK
        jwk.removeValue(forKey: "alg")
        let token = try key.sign(TestTokens.claims())
        let strict = try await KeySet.parse(jwks: try jwks([jwk]))
        await #expect(throws: BearerAuthError.unsupportedAlgorithm) {
            try await idTokenVerifier(strict).verify(token)
        }
        let configured = try await KeySet.parse(jwks: try jwks([jwk]), allowedAlgorithms: [.rs256, .rs512])
        #expect(try await idTokenVerifier(configured, algorithms: [.rs512]).verify(token).subject == "auth0|alice")
    }

    @Test func es256KeysAndTokensVerify() async throws {
        let privateKey = P256.Signing.PrivateKey()
        let raw = privateKey.publicKey.rawRepresentation  // x ‖ y
        let jwk: [String: JSONValue] = [
            "kty": "EC", "crv": "P-256", "use": "sig", "x": .string(Base64URL.encode(Array(raw.prefix(32)))),
            "y": .string(Base64URL.encode(Array(raw.suffix(32)))),
        ]
        let keys = try await KeySet.parse(jwks: try jwks([jwk]), allowedAlgorithms: [.rs256, .es256])
        #expect(keys.unnamedKeys.first?.algorithms == [.es256])
        let (input, bytes) = try unsigned(["alg": "ES256", "typ": "JWT"], TestTokens.claims())
        let signature = try privateKey.signature(for: bytes).rawRepresentation
        let token = input + "." + Base64URL.encode(Array(signature))
        #expect(try await idTokenVerifier(keys, algorithms: [.es256]).verify(token).subject == "auth0|alice")
        // A flipped signature byte fails; so does the same token where ES256 is not allowed.
        var forged = Array(signature)
        forged[5] ^= 1
        await #expect(throws: BearerAuthError.invalidSignature) {
            try await idTokenVerifier(keys, algorithms: [.es256]).verify(input + "." + Base64URL.encode(forged))
        }
        await #expect(throws: BearerAuthError.unsupportedAlgorithm) { try await idTokenVerifier(keys).verify(token) }
        // Without ES256 in the allowed algorithms, the EC key is not even loaded.
        await #expect(throws: KeySetError.noUsableKeys) { try await KeySet.parse(jwks: try jwks([jwk])) }
    }
}
