import Crypto
import Foundation
import JSON
import TestSupport
import Testing

@testable import JWTAuth

@Suite("JWTVerifier")
struct JWTVerifierTests {
    let clock = ManualClock(TestTokens.now)

    func verifier(keys: [RSASigningKey]? = nil, configure: (inout JWTVerifier.Configuration) -> Void = { _ in })
        async throws -> JWTVerifier
    {
        let signingKeys: [RSASigningKey]
        if let keys { signingKeys = keys } else { signingKeys = [try await TestKeys.primary] }
        var verificationKeys: [VerificationKey] = []
        for key in signingKeys { verificationKeys.append(try await key.verificationKey()) }
        var configuration = JWTVerifier.Configuration(
            issuer: TestTokens.issuer, audiences: [TestTokens.audience], cacheCapacity: 0)
        configure(&configuration)
        return JWTVerifier(configuration: configuration, keys: KeySet(verificationKeys), clock: clock)
    }

    func token(_ changes: [String: JSONValue] = [:], header: [String: JSONValue] = [:]) async throws -> String {
        try await TestKeys.primary.sign(TestTokens.claims(changes), extraHeader: header)
    }

    @Test func acceptsAValidTokenAndKeepsEveryClaim() async throws {
        let verified = try await verifier().verify(try await token(["custom": ["nested": true]]))
        #expect(verified.subject == "auth0|alice")
        #expect(verified.issuer == TestTokens.issuer)
        #expect(verified.audiences == [TestTokens.audience, "https://tenant.example.com/userinfo"])
        #expect(verified.scopes == ["openid", "read:todos", "read:billing"])
        #expect(verified[claim: "custom"] == ["nested": true])
        #expect(verified.string("azp") == "client-1")
        #expect(verified.expiresAt == TestTokens.now.addingTimeInterval(3600))
        let payload = try JSONDecoder().decode(JSONValue.self, from: Data(verified.payloadJSON))
        #expect(payload == .object(verified.claims))
    }

    @Test func acceptsAudienceAsAString() async throws {
        let verified = try await verifier().verify(try await token(["aud": .string(TestTokens.audience)]))
        #expect(verified.audiences == [TestTokens.audience])
    }

    @Test func acceptsAnyOfSeveralConfiguredAudiences() async throws {
        let verifier = try await verifier { $0.audiences = ["urn:other", TestTokens.audience] }
        _ = try await verifier.verify(try await token())
    }

    @Test func refusesAlgNone() async throws {
        let header = Base64URL.encode(Array(#"{"alg":"none","typ":"JWT"}"#.utf8))
        let payload = Base64URL.encode(try JSONEncoder().encode(TestTokens.claims()))
        await #expect(throws: BearerAuthError.unsupportedAlgorithm) {
            try await verifier().verify("\(header).\(payload).")
        }
        await #expect(throws: BearerAuthError.unsupportedAlgorithm) {
            try await verifier().verify("\(header).\(payload).c2lnbmF0dXJl")
        }
    }

    @Test func refusesHS256SignedWithThePublicKeyAsSecret() async throws {
        let key = try await TestKeys.primary
        let publicPEM = try JWTKitPEM.publicPEM(of: key)
        let header = Base64URL.encode(Array(#"{"alg":"HS256","kid":"\#(key.keyID)","typ":"JWT"}"#.utf8))
        let payload = Base64URL.encode(try JSONEncoder().encode(TestTokens.claims()))
        let mac = HMAC<SHA256>.authenticationCode(
            for: Data("\(header).\(payload)".utf8), using: SymmetricKey(data: Data(publicPEM.utf8)))
        await #expect(throws: BearerAuthError.unsupportedAlgorithm) {
            try await verifier().verify("\(header).\(payload).\(Base64URL.encode(Array(mac)))")
        }
    }

    @Test func refusesAnAlgorithmOutsideTheAllowList() async throws {
        let rs384 = try await RSASigningKey(pem: TestKeys.primary.pemRepresentation, algorithm: .rs384)
        let token = try rs384.sign(TestTokens.claims())
        await #expect(throws: BearerAuthError.unsupportedAlgorithm) { try await verifier().verify(token) }
    }

    @Test func refusesAnUnknownKid() async throws {
        let token = try await token(header: ["kid": "no-such-key"])
        await #expect(throws: BearerAuthError.unknownKey) { try await verifier().verify(token) }
    }

    @Test func refusesATokenWithoutKid() async throws {
        let key = try await TestKeys.primary
        let token = try key.sign(
            headerJSON: Array(#"{"alg":"RS256","typ":"JWT"}"#.utf8),
            payloadJSON: Array(try JSONEncoder().encode(TestTokens.claims())))
        await #expect(throws: BearerAuthError.missingKeyID) { try await verifier().verify(token) }
    }

    @Test func refusesAKnownKidWithAnotherKeysSignature() async throws {
        let primary = try await TestKeys.primary
        let forged = try await TestKeys.secondary.sign(
            TestTokens.claims(), extraHeader: ["kid": .string(primary.keyID)])
        await #expect(throws: BearerAuthError.invalidSignature) { try await verifier().verify(forged) }
    }

    @Test func refusesATamperedPayload() async throws {
        let parts = try await token().split(separator: ".")
        let payload = Base64URL.encode(try JSONEncoder().encode(TestTokens.claims(["sub": "auth0|mallory"])))
        await #expect(throws: BearerAuthError.invalidSignature) {
            try await verifier().verify("\(parts[0]).\(payload).\(parts[2])")
        }
    }

    @Test func refusesAnExpiredTokenBeyondTheLeeway() async throws {
        let exp = JSONValue.integer(Int64(TestTokens.now.timeIntervalSince1970) - 61)
        await #expect(throws: BearerAuthError.expired) { try await verifier().verify(try await token(["exp": exp])) }
    }

    @Test func acceptsARecentlyExpiredTokenWithinTheLeeway() async throws {
        let exp = JSONValue.integer(Int64(TestTokens.now.timeIntervalSince1970) - 30)
        _ = try await verifier().verify(try await token(["exp": exp]))
        await #expect(throws: BearerAuthError.expired) {
            try await verifier { $0.leeway = 0 }.verify(try await token(["exp": exp]))
        }
    }

    @Test func refusesATokenWhoseNotBeforeIsInTheFuture() async throws {
        let nbf = JSONValue.integer(Int64(TestTokens.now.timeIntervalSince1970) + 120)
        await #expect(throws: BearerAuthError.notYetValid) {
            try await verifier().verify(try await token(["nbf": nbf]))
        }
        let soon = JSONValue.integer(Int64(TestTokens.now.timeIntervalSince1970) + 30)
        _ = try await verifier().verify(try await token(["nbf": soon]))
    }

    @Test func refusesATokenIssuedInTheFuture() async throws {
        let iat = JSONValue.integer(Int64(TestTokens.now.timeIntervalSince1970) + 600)
        await #expect(throws: BearerAuthError.issuedInFuture) {
            try await verifier().verify(try await token(["iat": iat]))
        }
    }

    @Test func refusesAWrongIssuer() async throws {
        await #expect(throws: BearerAuthError.invalidIssuer) {
            try await verifier().verify(try await token(["iss": "https://evil.example.com/"]))
        }
    }

    @Test func refusesTheIssuerWithoutItsTrailingSlash() async throws {
        await #expect(throws: BearerAuthError.invalidIssuer) {
            try await verifier().verify(try await token(["iss": "https://tenant.example.com"]))
        }
    }

    @Test func refusesAMissingIssuer() async throws {
        await #expect(throws: BearerAuthError.invalidIssuer) {
            try await verifier().verify(try await token(["iss": nil]))
        }
    }

    @Test(arguments: [
        JSONValue.string("urn:other-api"), ["urn:other-api", "https://tenant.example.com/userinfo"], [], .integer(1),
        nil,
    ])
    func refusesAWrongAudience(aud: JSONValue) async throws {
        await #expect(throws: BearerAuthError.invalidAudience) {
            try await verifier().verify(try await token(["aud": aud]))
        }
    }

    @Test func refusesAMissingExpiry() async throws {
        await #expect(throws: BearerAuthError.missingExpiry) {
            try await verifier().verify(try await token(["exp": nil]))
        }
    }

    @Test func refusesANonNumericExpiry() async throws {
        await #expect(throws: BearerAuthError.malformedToken) {
            try await verifier().verify(try await token(["exp": "tomorrow"]))
        }
    }

    @Test func refusesAMissingSubjectUnlessConfiguredOtherwise() async throws {
        await #expect(throws: BearerAuthError.missingSubject) {
            try await verifier().verify(try await token(["sub": nil]))
        }
        _ = try await verifier { $0.requireSubject = false }.verify(try await token(["sub": nil]))
    }

    @Test(arguments: ["JWT", "at+jwt", "application/at+JWT"])
    func acceptsStandardTypes(typ: String) async throws {
        _ = try await verifier().verify(try await token(header: ["typ": .string(typ)]))
    }

    @Test func refusesOtherTypesAndCriticalHeaders() async throws {
        await #expect(throws: BearerAuthError.unsupportedTokenType) {
            try await verifier().verify(try await token(header: ["typ": "dpop+jwt"]))
        }
        await #expect(throws: BearerAuthError.unsupportedTokenType) {
            try await verifier().verify(try await token(header: ["crit": ["exp"]]))
        }
    }

    @Test func refusesMalformedBase64() async throws {
        let parts = try await token().split(separator: ".")
        for forged in [
            "\(parts[0])!.\(parts[1]).\(parts[2])", "\(parts[0]).\(parts[1])*.\(parts[2])",
            "\(parts[0]).\(parts[1]).\(parts[2])=", "W10.\(parts[1]).\(parts[2])", "A.\(parts[1]).\(parts[2])",
        ] {
            await #expect(throws: BearerAuthError.malformedToken, "\(forged.prefix(12))") {
                try await verifier().verify(forged)
            }
        }
    }

    @Test func refusesAPayloadThatIsNotJSON() async throws {
        let key = try await TestKeys.primary
        let token = try key.sign(
            headerJSON: Array(#"{"alg":"RS256","kid":"\#(key.keyID)"}"#.utf8), payloadJSON: Array("not json".utf8))
        await #expect(throws: BearerAuthError.malformedToken) { try await verifier().verify(token) }
    }

    @Test(arguments: [1, 3, 4])
    func refusesAWrongNumberOfSegments(dots: Int) async throws {
        let parts = try await token().split(separator: ".").map(String.init)
        let segments = dots < 2 ? Array(parts.prefix(dots + 1)) : parts + Array(repeating: parts[2], count: dots - 2)
        await #expect(throws: BearerAuthError.malformedToken) {
            try await verifier().verify(segments.joined(separator: "."))
        }
    }

    @Test func refusesAnOversizedTokenBeforeDecodingIt() async throws {
        let padding = String(repeating: "x", count: 20_000)
        await #expect(throws: BearerAuthError.tokenTooLarge) {
            try await verifier().verify(try await token(["padding": .string(padding)]))
        }
    }

    @Test func keyWithAlgorithmIsOnlyUsedWithIt() async throws {
        let key = try await TestKeys.primary
        let restricted = try await VerificationKey(
            keyID: key.keyID, publicKey: JWTKitPEM.publicKey(of: key), algorithms: [.ps256])
        let verifier = JWTVerifier(
            configuration: .init(
                issuer: TestTokens.issuer, audiences: [TestTokens.audience],
                allowedAlgorithms: [.rs256, .ps256]),
            keys: KeySet([restricted]), clock: clock)
        await #expect(throws: BearerAuthError.unsupportedAlgorithm) { try await verifier.verify(try await token()) }
    }
}
