import Foundation
import JSON
import TestSupport
import Testing

@testable import JWTAuth

@Suite("ClaimText")
struct ClaimTextTests {
    @Test(arguments: [
        0x00, 0x07, 0x08, 0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x1B, 0x1F, 0x7F, 0x80, 0x85, 0x9B, 0x9F, 0x200E, 0x200F, 0x2028,
        0x2029, 0x202A, 0x202B, 0x202C, 0x202D, 0x202E, 0x2066, 0x2067, 0x2068, 0x2069,
    ] as [UInt32])
    func controlsSeparatorsAndBidiFormattingAreUnsafe(_ value: UInt32) throws {
        let scalar = try #require(Unicode.Scalar(value))
        #expect(ClaimText.isUnsafe(scalar))
        #expect(!ClaimText.isSafe("a\(Character(scalar))b"))
        #expect(!ClaimText.isSafe(String(Character(scalar))))
    }

    /// U+061C ARABIC LETTER MARK is one of Unicode's Bidi_Control characters, with U+200E/U+200F (which are refused):
    /// an invisible mark that changes how the text around it is ordered.
    @Test func theArabicLetterMarkIsABidiControlToo() throws {
        #expect(ClaimText.isUnsafe(try #require(Unicode.Scalar(0x061C))))
    }

    @Test(arguments: [
        0x20, 0x21, 0x7E, 0xA0, 0xE9, 0x200B, 0x200C, 0x200D, 0x2027, 0x202F, 0x3000, 0x65E5, 0x1F600,
    ] as [UInt32])
    func printableCharactersAreSafe(_ value: UInt32) throws {
        let scalar = try #require(Unicode.Scalar(value))
        #expect(!ClaimText.isUnsafe(scalar))
    }

    @Test(arguments: [
        "auth0|alice", "alice@example.com", "Renée Müller", "日本 太郎", "Zoë 👩‍👩‍👧", "a b\\c\"d'e<f>", "",
        "github|github.example.com|583231", "ⓐ ǅ ﬁ",
    ])
    func ordinaryIdentitiesAreSafeAndUnchanged(_ text: String) {
        #expect(ClaimText.isSafe(text))
        #expect(ClaimText.escaped(text) == text)
    }

    @Test func escapesAreReadableAndKeepTheTextOnOneLine() {
        #expect(ClaimText.escaped("a\nb") == #"a\nb"#)
        #expect(ClaimText.escaped("a\r\nb") == #"a\r\nb"#)
        #expect(ClaimText.escaped("a\tb") == #"a\tb"#)
        #expect(ClaimText.escaped("\u{1B}[2J") == #"\u{1B}[2J"#)
        #expect(ClaimText.escaped("x\u{0}y") == #"x\u{0}y"#)
        #expect(ClaimText.escaped("x\u{7F}") == #"x\u{7F}"#)
        #expect(ClaimText.escaped("x\u{85}y\u{9B}") == #"x\u{85}y\u{9B}"#)
        #expect(ClaimText.escaped("x\u{2028}y\u{2029}") == #"x\u{2028}y\u{2029}"#)
        #expect(ClaimText.escaped("\u{202E}evil") == #"\u{202E}evil"#)
        #expect(ClaimText.escaped("Renée\n日本") == #"Renée\n日本"#)
    }

    @Test func escapedTextIsAlwaysSafeAndEscapingTwiceChangesNothing() {
        var every = ""
        for value in UInt32(0)...0x2100 {
            if let scalar = Unicode.Scalar(value) { every.unicodeScalars.append(scalar) }
        }
        let escaped = ClaimText.escaped(every)
        #expect(ClaimText.isSafe(escaped))
        #expect(ClaimText.escaped(escaped) == escaped)
        #expect(!escaped.contains("\n") && !escaped.contains("\r"))
        // What was safe is kept as it was, in order.
        #expect(
            escaped.unicodeScalars.filter { $0.value > 0x7E }.map(\.value)
                == every.unicodeScalars.filter { $0.value > 0x7E && !ClaimText.isUnsafe($0) }.map(\.value))
    }

    @Test func aForgedLogLineStaysOnTheLineOfTheValue() {
        let forged = "alice\n2026-12-01T10:22:33.123Z notice McpGateway.audit: audit.event=grant_revoked user.id=bob"
        let escaped = ClaimText.escaped(forged)
        #expect(escaped.split(separator: "\n").count == 1)
        #expect(escaped == #"alice\n2026-12-01T10:22:33.123Z notice McpGateway.audit: audit.event=grant_revoked user.id=bob"#)
    }
}

/// The verifier refuses a token that is valid in every other way when a claim naming a person or client holds a
/// control character: such a value is an attack on whoever reads the logs, terminals and tokens it ends up in.
@Suite("JWTVerifier: control characters in identity claims")
struct JWTVerifierControlCharacterTests {
    let clock = ManualClock(TestTokens.now)

    func verifier(configure: (inout JWTVerifier.Configuration) -> Void = { _ in }) async throws -> JWTVerifier {
        var configuration = JWTVerifier.Configuration(
            issuer: TestTokens.issuer, audiences: [TestTokens.audience], cacheCapacity: 0)
        configure(&configuration)
        return JWTVerifier(
            configuration: configuration, keys: KeySet([try await TestKeys.primary.verificationKey()]), clock: clock)
    }

    func token(_ changes: [String: JSONValue]) async throws -> String {
        try await TestKeys.primary.sign(TestTokens.claims(changes))
    }

    /// The claims that identify: a control character in one refuses the token.
    static let claims = ["sub", "client_id", "azp"]
    /// The claims people read: a control character in one leaves the token valid, and the value unused.
    static let displayClaims = ["name", "email", "preferred_username", "nickname", "given_name", "family_name"]
    static let hostile = [
        "alice\nforged line", "alice\r", "al\u{1B}[31mice", "alice\u{7}", "alice\u{0}", "alice\u{7F}", "alice\u{85}",
        "alice\u{9B}", "alice\u{2028}", "alice\u{2029}", "\u{202E}ecila", "alice\u{2066}", "alice\u{200F}",
        "alice\tx",
    ]

    @Test(arguments: claims)
    func aClaimWithAControlCharacterIsAMalformedTokenThatNamesTheClaim(_ claim: String) async throws {
        let verifier = try await verifier()
        for value in Self.hostile {
            let jwt = try await token([claim: .string(value)])
            do {
                _ = try await verifier.verify(jwt)
                Issue.record("\(claim) = \(value.debugDescription) was accepted")
            } catch {
                #expect(error == .malformedToken, "\(claim) = \(value.debugDescription): \(error)")
                #expect(error.message.contains(" \(claim) "), "\(error.message)")
                #expect(error.code == .invalidToken)
                // The message is safe to put in a header and a log: it does not echo the value.
                #expect(ClaimText.isSafe(error.message) && !error.message.contains("alice"))
            }
        }
    }

    @Test(arguments: displayClaims)
    func aDisplayClaimWithAControlCharacterIsNotUsedButTheTokenIs(_ claim: String) async throws {
        let verifier = try await verifier()
        for value in Self.hostile {
            let verified = try await verifier.verify(try await token([claim: .string(value)]))
            #expect(verified.displayString(claim) == nil, "\(claim) = \(value.debugDescription)")
            #expect(verified.string(claim) == value)  // the raw claim, for code that escapes it itself
        }
    }

    @Test func theCheckHoldsWhenTheSubjectIsNotRequiredAndWithACache() async throws {
        // Access assertions do not require sub; a verifier with a cache must not let a refused token in later.
        let lenient = try await verifier { $0.requireSubject = false }
        await #expect(throws: BearerAuthError.malformedToken) {
            try await lenient.verify(try await token(["sub": "a\nb", "email": "a@b.example"]))
        }
        let cached = try await verifier { $0.cacheCapacity = 16 }
        let hostile = try await token(["sub": "alice\nforged"])
        for _ in 0..<2 {
            await #expect(throws: BearerAuthError.malformedToken) { try await cached.verify(hostile) }
        }
    }

    @Test func aCleanTokenWithNonASCIIIdentitiesIsAccepted() async throws {
        let verified = try await verifier().verify(
            try await token([
                "sub": "auth0|renée", "name": "Renée 日本", "email": "renée@例え.jp", "preferred_username": "ルネ",
                "given_name": "Zoë", "family_name": "Ñandú", "nickname": "👩‍💻", "client_id": "client-ü",
                // Other claims are not identities: a control character there does not refuse the token.
                "note": "line one\nline two",
            ]))
        #expect(verified.subject == "auth0|renée")
        #expect(verified.string("name") == "Renée 日本")
    }

    @Test func onlyStringsAreChecked() async throws {
        // A claim of another type is not a name: `token.string(...)` gives nil for it, so it never reaches a log as
        // text.
        _ = try await verifier().verify(try await token(["name": ["first\n", "second"], "email": 42]))
    }
}
