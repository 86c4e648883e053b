import Crypto
import Foundation
import JSON
import Testing

@testable import JWTAuth

/// DPoP proofs (RFC 9449 §4.3): every check a proof must pass, and the RFC 7638 thumbprint that binds tokens to keys.
@Suite("DPoP proofs")
struct DPoPProofTests {
    static let key = Task { try await RSASigningKey.generate() }
    static let now = Date(timeIntervalSince1970: 1_750_000_000)
    static let url = "https://mcp.example.com/mcp"

    func proof(
        _ key: RSASigningKey, changes: [String: JSONValue] = [:], header: [String: JSONValue]? = nil,
        type: String? = "dpop+jwt"
    ) throws -> String {
        var claims: [String: JSONValue] = [
            "jti": "proof-1", "htm": "POST", "htu": .string(Self.url),
            "iat": .integer(Int64(Self.now.timeIntervalSince1970)),
        ]
        for (name, value) in changes {
            if value == .null { claims.removeValue(forKey: name) } else { claims[name] = value }
        }
        var jwk = key.publicJWK
        jwk.removeValue(forKey: "kid")
        return try key.sign(claims, type: type, extraHeader: header ?? ["jwk": .object(jwk), "kid": .null])
    }

    func verify(_ proof: String, method: String = "POST", url: String = url, token: String? = nil) async throws
        -> DPoPProof
    {
        try await DPoPProof.verify(
            proof, expected: .init(method: method, url: url, accessToken: token), now: Self.now)
    }

    @Test func theThumbprintIsRFC7638s() {
        // RFC 7638 §3.1's example key and thumbprint.
        let jwk: [String: JSONValue] = [
            "kty": "RSA", "e": "AQAB", "alg": "RS256", "kid": "2011-04-29",
            "n": """
            0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3\
            oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgd\
            AZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCu\
            r-kEgU8awapJzKnqDKgw
            """,
        ]
        #expect(DPoPProof.thumbprint(of: jwk) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs")
        #expect(DPoPProof.thumbprint(of: ["kty": "oct", "k": "c2VjcmV0"]) == nil)
    }

    @Test func aValidProofGivesItsKeysThumbprint() async throws {
        let key = try await Self.key.value
        let token = "gw_at_example"
        let ath = Base64URL.encode(SHA256.hash(data: Data(token.utf8)))
        let verified = try await verify(
            try proof(key, changes: ["ath": .string(ath), "nonce": "n-1"]), token: token)
        #expect(verified.thumbprint == key.keyID)  // RSASigningKey's kid is its RFC 7638 thumbprint
        #expect(verified.id == "proof-1" && verified.nonce == "n-1")
        // The URL is compared without query and fragment, scheme and host case-insensitively.
        _ = try await verify(
            try proof(key, changes: ["htu": "HTTPS://MCP.example.com:443/mcp?x=1#f", "ath": .string(ath)]), token: token
        )
    }

    @Test func everyCheckRefuses() async throws {
        let key = try await Self.key.value
        let other = try await RSASigningKey.generate()
        var jwk = key.publicJWK
        jwk.removeValue(forKey: "kid")
        let seconds = Int64(Self.now.timeIntervalSince1970)
        let valid = try proof(key)
        let parts = valid.split(separator: ".")
        let cases: [(String, String, String?)] = [
            ("wrong method", try proof(key, changes: ["htm": "GET"]), nil),
            ("wrong URL", try proof(key, changes: ["htu": "https://mcp.example.com/token"]), nil),
            ("no jti", try proof(key, changes: ["jti": .null]), nil),
            ("old", try proof(key, changes: ["iat": .integer(seconds - 301)]), nil),
            ("future", try proof(key, changes: ["iat": .integer(seconds + 120)]), nil),
            ("no iat", try proof(key, changes: ["iat": .null]), nil),
            ("no typ", try proof(key, type: nil), nil),
            ("another typ", try proof(key, type: "JWT"), nil),
            ("no jwk", try proof(key, header: ["kid": "x"]), nil),
            ("another key's jwk", try proof(key, header: ["jwk": .object(other.publicJWK)]), nil),
            (
                "a private jwk",
                try proof(key, header: ["jwk": .object(jwk.merging(["d": "AQAB"]) { a, _ in a })]), nil
            ),
            ("no ath for a token", valid, "gw_at_example"),
            ("another token's ath", try proof(key, changes: ["ath": "abc"]), "gw_at_example"),
            ("unsigned", parts[0] + "." + parts[1] + ".", nil),
            (
                "alg none",
                Base64URL.encode(Array(#"{"alg":"none","typ":"dpop+jwt"}"#.utf8)) + "." + parts[1] + ".", nil
            ),
            ("not a JWT", "abc", nil),
        ]
        for (name, proof, token) in cases {
            await #expect(throws: DPoPError.self, "\(name)") { _ = try await verify(proof, token: token) }
        }
    }
}
