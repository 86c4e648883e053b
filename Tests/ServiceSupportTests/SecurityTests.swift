import Foundation
import HTTPTypes
import NIOCore
import Testing

@testable import ServiceSupport

@Suite("Security helpers")
struct SecurityTests {
    @Test(arguments: [
        ("application/json", "application/json"), ("Application/JSON; charset=utf-8", "application/json"),
        ("  text/event-stream\t;x=1", "text/event-stream"), ("APPLICATION/X-WWW-FORM-URLENCODED", "application/x-www-form-urlencoded"),
        ("", ""), (" ; charset=utf-8", ""), (";", ""), ("\t", ""), ("a/b;c;d", "a/b"),
        // Other characters than ASCII take Foundation's way: Unicode spaces trimmed, letters lower-cased.
        ("\u{00A0}Application/ÄB\u{00A0}; x", "application/äb"),
    ])
    func mediaTypeEssenceIsTheLowerCasedTypeWithoutParameters(_ value: String, _ essence: String) {
        #expect(MediaType.essence(value) == essence)
        #expect(MediaType.essence(value[...]) == essence)
    }

    @Test func pkceMatchesRFC7636AppendixB() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
        #expect(PKCE.challenge(for: verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")
        #expect(PKCE.verify(verifier, challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"))
        #expect(!PKCE.verify(verifier + "x", challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"))
        #expect(PKCE.isWellFormedVerifier(PKCE.makeVerifier()))
        #expect(!PKCE.isWellFormedVerifier(String(repeating: "a", count: 42)))
        #expect(!PKCE.isWellFormedVerifier(String(repeating: "a", count: 129)))
        #expect(!PKCE.isWellFormedVerifier(String(repeating: "a", count: 42) + "+"))
        #expect(PKCE.isWellFormedS256Challenge("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"))
        #expect(!PKCE.isWellFormedS256Challenge("plain-challenge"))
    }

    @Test func secretsAreComparedAsDigests() {
        let digest = SecretDigest.hex("s3cret")
        #expect(digest.count == 64)
        #expect(SecretDigest.matches("s3cret", digest: digest))
        #expect(!SecretDigest.matches("s3cres", digest: digest))
        #expect(!SecretDigest.constantTimeEqual([1, 2], [1, 2, 3]))
    }

    @Test func tokensAreRandomAndPrefixed() {
        let random = SystemRandomSource()
        let token = random.token(prefix: "mcpgw_at_")
        #expect(token.hasPrefix("mcpgw_at_"))
        #expect(token.count == 9 + 43)
        #expect(random.token() != random.token())
    }

    @Test(arguments: [
        "https://app.example.com/cb", "http://localhost:6274/oauth/callback", "http://127.0.0.1/cb",
        "http://[::1]:3000/cb", "https://app.example.com/cb?x=1",
    ])
    func acceptableRedirectURIs(uri: String) throws {
        try RedirectURI.validate(uri)
    }

    @Test(arguments: [
        ("javascript:alert(1)", RedirectURI.Problem.scheme("javascript")), ("data:text/html,x", .scheme("data")),
        ("file:///etc/passwd", .scheme("file")), ("http://evil.example.com/cb", .insecureHTTP),
        ("https://app.example.com/cb#x", .fragment), ("https://user:pw@app.example.com/cb", .credentials),
        ("/relative", .notAURL), ("myapp://cb", .scheme("myapp")),
        ("https://client.example/cb\r\nSet-Cookie: x=1", .characters), ("https://client.example/cb\0", .characters),
        ("https://client.example/c b", .characters), ("https://client.example/cé", .characters),
        ("https://client.example/cb?x=%zz", .characters), ("https://client.example/cb%", .characters),
        ("https://client.example/cb\t", .characters), ("", .characters),
    ])
    func refusedRedirectURIs(uri: String, problem: RedirectURI.Problem) {
        #expect(throws: problem) { try RedirectURI.validate(uri) }
    }

    @Test func loopbackRedirectsMatchOnAnyPort() {
        #expect(RedirectURI.matches("http://localhost:51234/cb", registered: "http://localhost/cb"))
        #expect(RedirectURI.matches("http://127.0.0.1:8080/cb", registered: "http://127.0.0.1:9/cb"))
        #expect(!RedirectURI.matches("http://localhost:51234/other", registered: "http://localhost/cb"))
        #expect(!RedirectURI.matches("https://app.example.com:444/cb", registered: "https://app.example.com/cb"))
        #expect(!RedirectURI.matches("https://app.example.com/cb/", registered: "https://app.example.com/cb"))
        #expect(!RedirectURI.matches("http://127.0.0.1:8080/cb", registered: "http://localhost:8080/cb"))
    }

    @Test func appendingKeepsTheExistingQueryAndEncodesValues() {
        let uri = RedirectURI.appending(
            [("code", "a+b/c="), ("state", "x&y")], to: "https://app.example.com/cb?tenant=1")
        #expect(uri == "https://app.example.com/cb?tenant=1&code=a%2Bb%2Fc%3D&state=x%26y")
    }

    @Test func formParametersRefuseRepeats() throws {
        let form = try FormParameters(encoded: "a=1&b=hello+world&c=%2B&a=2&empty=")
        #expect(throws: ErrorResponse.self) { try form.single("a") }
        #expect(try form.single("b") == "hello world")
        #expect(try form.single("c") == "+")
        #expect(try form.single("empty") == nil)
        #expect(throws: ErrorResponse.self) { try form.required("missing") }
        #expect(throws: ErrorResponse.self) { try FormParameters(encoded: "a=%ZZ") }
    }

    @Test(arguments: ["a=%", "a=%4", "a=x%4", "a=%%41", "a=%FF", "a=%C3", "a=%C3%28", "%G1=1"])
    func formParametersRefuseMalformedEscapesAndInvalidUTF8(_ encoded: String) {
        #expect(throws: ErrorResponse.self) { try FormParameters(encoded: encoded) }
    }

    @Test func formDecodingTakesPlainValuesAsTheyAre() throws {
        #expect(FormParameters.decode("gwa_abc-DEF_123.~") == "gwa_abc-DEF_123.~")
        #expect(FormParameters.decode("%41%62+%2b%2B") == "Ab ++")
        #expect(FormParameters.decode("%e2%9c%93") == "✓")
    }

    @Test(arguments: ["client_id=abc%00zzz", "state=a%0Db", "x%09=1", "scope=read%7F", "code=%C2%85", "a=%1F"])
    func formParametersRefuseControlCharacters(_ encoded: String) {
        #expect {
            try FormParameters(encoded: encoded)
        } throws: { error in
            (error as? ErrorResponse)?.code == "invalid_request" && (error as? ErrorResponse)?.status == .badRequest
        }
    }

    @Test func formParametersKeepVisibleUnicode() throws {
        #expect(try FormParameters(encoded: "name=Zo%C3%AB+%E2%9C%93").single("name") == "Zoë ✓")
    }

    @Test func rateLimiterRefillsAndSaysWhen() {
        let limiter = RateLimiter(limit: RateLimit(2, per: 10))
        #expect(limiter.take("a", now: 0) == nil)
        #expect(limiter.take("a", now: 0) == nil)
        #expect(limiter.take("a", now: 0) == 5)  // one token every 5 s
        #expect(limiter.take("b", now: 0) == nil)  // per key
        #expect(limiter.take("a", now: 5) == nil)
        #expect(RateLimit.parse("30/min") == .some(RateLimit(30, per: 60)))
        #expect(RateLimit.parse("off") == .some(nil))
        #expect(RateLimit.parse("many") == nil)
    }

    @Test func theRateLimiterForgetsFullBucketsFirst() {
        let limiter = RateLimiter(limit: RateLimit(1, per: 1), maximumKeys: 3)
        for key in ["a", "b", "c"] { #expect(limiter.take(key, now: 0) == nil) }
        #expect(limiter.take("d", now: 10) == nil)  // a, b, c have refilled: forgotten
        #expect(limiter.take("d", now: 10) != nil)
    }

    @Test func forwardedForIsBelievedOnlyFromTrustedProxies() throws {
        let resolver = ClientAddressResolver(trustedProxies: [try #require(AddressBlock("10.0.0.0/8"))])
        let proxy = try SocketAddress(ipAddress: "10.1.2.3", port: 5000)
        let stranger = try SocketAddress(ipAddress: "203.0.113.9", port: 5000)
        #expect(resolver.clientAddress(peer: stranger, forwardedFor: ["198.51.100.1"]) == "203.0.113.9")
        #expect(resolver.clientAddress(peer: proxy, forwardedFor: ["198.51.100.1"]) == "198.51.100.1")
        // The client's own entries are left of the last untrusted one: spoofing the header does not help.
        #expect(
            resolver.clientAddress(peer: proxy, forwardedFor: ["1.1.1.1, 198.51.100.1, 10.0.0.7"]) == "198.51.100.1")
        #expect(resolver.clientAddress(peer: proxy, forwardedFor: ["garbage"]) == "10.1.2.3")
        #expect(resolver.clientAddress(peer: proxy, forwardedFor: []) == "10.1.2.3")
        #expect(AddressBlock("fd00::/8") != nil && AddressBlock("10.0.0.0/33") == nil && AddressBlock("x") == nil)
    }
}
