import Foundation
import JSON

@testable import JWTAuth

/// RSA keys are slow to generate in debug builds: each test process makes three and shares them.
enum TestKeys {
    private static let keys = Task { () throws -> [RSASigningKey] in
        var keys: [RSASigningKey] = []
        for _ in 0..<3 { keys.append(try await RSASigningKey.generate()) }
        return keys
    }

    static var primary: RSASigningKey { get async throws { try await keys.value[0] } }
    static var secondary: RSASigningKey { get async throws { try await keys.value[1] } }
    static var third: RSASigningKey { get async throws { try await keys.value[2] } }

    /// A JWKS document publishing `keys`.
    static func jwks(_ keys: [RSASigningKey], extra: [JSONValue] = []) throws -> [UInt8] {
        let document: JSONValue = ["keys": .array(keys.map { .object($0.publicJWK) } + extra)]
        return Array(try JSONEncoder().encode(document))
    }
}

enum TestTokens {
    static let issuer = "https://tenant.example.com/"
    static let audience = "urn:todos-api"
    static let now = Date(timeIntervalSince1970: 1_750_000_000)

    /// Claims of a valid access token at ``now``, with `changes` applied (`.null` removes a claim).
    static func claims(_ changes: [String: JSONValue] = [:]) -> [String: JSONValue] {
        var claims: [String: JSONValue] = [
            "iss": .string(issuer), "sub": "auth0|alice",
            "aud": .array([.string(audience), "https://tenant.example.com/userinfo"]),
            "iat": .integer(Int64(now.timeIntervalSince1970) - 10),
            "exp": .integer(Int64(now.timeIntervalSince1970) + 3600),
            "scope": "openid read:todos", "permissions": ["read:todos", "read:billing"], "azp": "client-1",
        ]
        for (name, value) in changes {
            if value == .null { claims.removeValue(forKey: name) } else { claims[name] = value }
        }
        return claims
    }
}
