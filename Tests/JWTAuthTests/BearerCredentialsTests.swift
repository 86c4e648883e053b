import JSON
import Testing

@testable import JWTAuth

@Suite("Bearer credentials (RFC 6750 §2.1)")
struct BearerCredentialsTests {
    @Test(arguments: [
        "Bearer abc.def-ghi_jkl", "bearer abc.def-ghi_jkl", "BEARER abc.def-ghi_jkl",
        "BeArEr   abc.def-ghi_jkl", "Bearer abc.def-ghi_jkl  ",
    ])
    func acceptsTheSchemeInAnyCase(header: String) throws {
        #expect(try BearerCredentials.token(fromAuthorization: header) == "abc.def-ghi_jkl")
    }

    @Test func acceptsToken68PaddingAndSymbols() throws {
        #expect(try BearerCredentials.token(fromAuthorization: "Bearer a~b+c/d==") == "a~b+c/d==")
    }

    @Test func everyByteIsJudgedAsRFC7235sToken68Says() {
        let allowed = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/".utf8)
        for byte in UInt8.min...UInt8.max {
            #expect(BearerCredentials.isToken68([byte]) == allowed.contains(byte), "byte \(byte)")
            let padded = [UInt8(ascii: "a"), byte, UInt8(ascii: "=")]
            #expect(BearerCredentials.isToken68(padded) == (allowed.contains(byte) || byte == UInt8(ascii: "=")))
        }
        // Padding only at the end, and never alone.
        #expect(BearerCredentials.isToken68(Array("ab==".utf8)))
        #expect(!BearerCredentials.isToken68(Array("a=b".utf8)))
        #expect(!BearerCredentials.isToken68(Array("==".utf8)))
        #expect(!BearerCredentials.isToken68([]))
        #expect(!BearerCredentials.isToken68(Array("a=b=".utf8)))
        // A token the size of a real JWT, with one wrong byte anywhere in it.
        let long = Array(repeating: UInt8(ascii: "x"), count: 1_000)
        #expect(BearerCredentials.isToken68(long))
        for position in [0, 1, 63, 64, 500, 998, 999] {
            for wrong in [UInt8(ascii: " "), UInt8(ascii: "="), UInt8(ascii: "@"), 0x80, 0xFF, 0x00] {
                var token = long
                token[position] = wrong
                let expected = wrong == UInt8(ascii: "=") && position == 999
                #expect(BearerCredentials.isToken68(token) == expected, "byte \(wrong) at \(position)")
            }
        }
    }

    @Test func noHeaderMeansNoCredentials() {
        #expect(throws: BearerAuthError.missingToken) { try BearerCredentials.token(fromAuthorizationHeaders: []) }
    }

    @Test(arguments: ["Basic dXNlcjpwYXNz", "Token abc", "DPoP abc"])
    func anotherSchemeMeansNoBearerCredentials(header: String) {
        let error = #expect(throws: BearerAuthError.missingToken) {
            try BearerCredentials.token(fromAuthorization: header)
        }
        #expect(error?.code == nil)
    }

    @Test(arguments: ["Bearer a b", "Bearer a, Bearer b", "Bearer a,b"])
    func refusesTwoTokensInOneHeader(header: String) {
        #expect(throws: BearerAuthError.malformedAuthorization) {
            try BearerCredentials.token(fromAuthorization: header)
        }
    }

    @Test func refusesTwoAuthorizationHeaders() {
        #expect(throws: BearerAuthError.malformedAuthorization) {
            try BearerCredentials.token(fromAuthorizationHeaders: ["Bearer a", "Bearer b"])
        }
    }

    @Test(arguments: ["Bearer", "Bearer ", "Bearer    ", "", "   ", "Bearer\tabc"])
    func refusesMalformedCredentials(header: String) {
        let error = #expect(throws: BearerAuthError.malformedAuthorization) {
            try BearerCredentials.token(fromAuthorization: header)
        }
        #expect(error?.code == .invalidRequest)
        #expect(error?.httpStatus == 400)
    }

    @Test(arguments: ["Bearer a=b", "Bearer a\"b", "Bearer a;b", "Bearer é", "Bearer =", "Bearer a\\b"])
    func aTokenWithForbiddenCharactersIsAMalformedToken(header: String) {
        let error = #expect(throws: BearerAuthError.malformedToken) {
            try BearerCredentials.token(fromAuthorization: header)
        }
        #expect(error?.code == .invalidToken)
        #expect(error?.httpStatus == 401)
    }
}

@Suite("WWW-Authenticate challenges (RFC 6750 §3)")
struct BearerChallengeTests {
    @Test func invalidTokenCarriesErrorAndDescription() {
        #expect(
            BearerAuthError.expired.challenge(realm: "todos-api")
                == #"Bearer realm="todos-api", error="invalid_token", error_description="The access token expired""#)
        #expect(BearerAuthError.expired.httpStatus == 401)
    }

    @Test func missingCredentialsCarryNoErrorAttribute() {
        let challenge = BearerAuthError.missingToken.challenge(
            realm: "mcp", scope: ["read:todos"],
            resourceMetadata: "https://gw.example/.well-known/oauth-protected-resource/mcp")
        #expect(
            challenge
                == #"Bearer realm="mcp", scope="read:todos", resource_metadata="https://gw.example/.well-known/oauth-protected-resource/mcp""#
        )
    }

    @Test func insufficientScopeNamesTheScope() {
        let error = BearerAuthError.insufficientScope(["read:billing"])
        #expect(error.httpStatus == 403)
        #expect(error.code == .insufficientScope)
        #expect(error.challenge(realm: "todos-api").hasSuffix(#"scope="read:billing""#))
        #expect(error != BearerAuthError.insufficientScope(["write:todos"]))
    }

    @Test func descriptionsCannotBreakOutOfTheQuotedString() {
        let error = BearerAuthError.invalidSignature.with(message: "bad \"quote\" \\ and\nnewline ü")
        #expect(error.challenge().contains(#"error_description="bad 'quote' ' and?newline ?""#))
        #expect(error == .invalidSignature)
    }
}

@Suite("ScopeSet")
struct ScopeSetTests {
    @Test func readsScopeScpAndPermissions() {
        let scopes = ScopeSet(claims: [
            "scope": "openid  read:todos", "scp": ["write:todos"], "permissions": ["read:billing", 7],
        ])
        #expect(scopes == ["openid", "read:todos", "write:todos"])
        #expect(ScopeSet(claims: ["permissions": ["read:billing"], "scp": "a b"]) == ["read:billing", "a", "b"])
    }

    @Test func setOperationsAndStableDescription() {
        let granted: ScopeSet = ["write:todos", "read:todos"]
        #expect(granted.description == "read:todos write:todos")
        #expect(granted.isSuperset(of: ["read:todos"]))
        #expect(!granted.isSuperset(of: ["read:billing"]))
        #expect(granted.intersection(["read:todos", "x"]) == ["read:todos"])
        #expect(ScopeSet(spaceSeparated: " a  b ").sorted == ["a", "b"])
    }
}
