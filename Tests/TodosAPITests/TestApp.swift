import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import JSON
import JWTAuth
import Logging
import NIOCore
import TestSupport
import Testing

@testable import TodosAPI

/// A TodosAPI built as in production, with a fixed key set, an in-memory database and a manual clock.
struct TestApp {
    static let issuer = "https://tenant.example.com/"
    static let audience = "urn:todos-api"
    static let now = Date(timeIntervalSince1970: 1_750_000_000)
    private static let signingKey = Task { try await RSASigningKey.generate() }

    static let accessTeam = "https://acme.cloudflareaccess.com"
    static let accessAudience = "todos-api-aud"
    static let gatewayIssuer = "https://mcp.example.com"
    private static let gatewayKey = Task { try await RSASigningKey.generate() }

    let clock = ManualClock(now)
    let signingKey: RSASigningKey
    let keys: any VerificationKeyProvider
    let tokens: TodosAPIConfiguration.TokenSettings?
    let access: TodosAPIConfiguration.AccessSettings?
    /// The MCP gateway as a second trusted issuer, with its own key.
    let gateway: TodosAPIConfiguration.TokenSettings?
    let gatewayKey: RSASigningKey

    /// `access`: Cloudflare Access assertions signed with the same key are accepted too; `bearer: false` leaves only
    /// them.
    init(
        keys: (any VerificationKeyProvider)? = nil, access: ScopeSet? = nil, bearer: Bool = true,
        trustsGateway: Bool = false
    ) async throws {
        self.signingKey = try await Self.signingKey.value
        self.gatewayKey = try await Self.gatewayKey.value
        self.gateway =
            trustsGateway
            ? .init(
                issuer: Self.gatewayIssuer, audiences: [Self.audience], jwksSource: .url("https://unused.invalid/gw"),
                acceptedTypes: TodosAPIConfiguration.gatewayTokenTypes, requiresType: true)
            : nil
        if let keys { self.keys = keys } else { self.keys = KeySet([try await signingKey.verificationKey()]) }
        self.tokens =
            bearer
            ? .init(issuer: Self.issuer, audiences: [Self.audience], jwksSource: .url("https://unused.invalid/jwks"))
            : nil
        self.access = access.map { .init(teamDomain: Self.accessTeam, audiences: [Self.accessAudience], scopes: $0) }
    }

    func run(_ test: @escaping @Sendable (any TestClientProtocol) async throws -> Void) async throws {
        let configuration = TodosAPIConfiguration(
            host: "127.0.0.1", port: 0, tokens: tokens, gateway: gateway, access: access, leeway: 60,
            jwksRefreshCooldown: 5, databasePath: ":memory:")
        let repository = SQLiteTodoRepository(database: try TodoDatabase.inMemory(), clock: clock)
        let app = buildApplication(
            configuration: configuration,
            dependencies: TodosAPIDependencies(
                keys: keys, gatewayKeys: KeySet([try await gatewayKey.verificationKey()]), repository: repository,
                clock: clock),
            logger: Logger(label: "test"))
        try await app.test(.router, test)
    }

    /// An access token as DevIdP issues them: `alice` has every permission, `bob` only `read:todos`.
    func token(_ user: String = "alice", scope: String? = nil, changes: [String: JSONValue] = [:]) throws -> String {
        let permissions = user == "alice" ? ["read:todos", "read:billing", "write:todos"] : ["read:todos"]
        var claims: [String: JSONValue] = [
            "iss": .string(Self.issuer), "sub": .string("auth0|\(user)"),
            "aud": [.string(Self.audience), "https://tenant.example.com/userinfo"],
            "iat": .integer(Int64(Self.now.timeIntervalSince1970)),
            "exp": .integer(Int64(Self.now.timeIntervalSince1970) + 3600),
            "scope": .string(scope ?? (["openid"] + permissions).joined(separator: " ")), "azp": "test-client",
        ]
        for (name, value) in changes {
            if value == .null { claims.removeValue(forKey: name) } else { claims[name] = value }
        }
        return try signingKey.sign(claims)
    }

    /// A token as the MCP gateway mints them (``gatewayKey``, `typ: at+jwt`) for `user`, with `scope`: a user it
    /// signed in with the provider (`sub_id` names the provider's issuer, ``subjectIssuer``).
    func gatewayToken(
        _ user: String = "alice", scope: String = "read:todos", changes: [String: JSONValue] = [:],
        type: String? = "at+jwt", key: RSASigningKey? = nil, subjectIssuer: String = TestApp.issuer
    ) throws -> String {
        var claims: [String: JSONValue] = [
            "iss": .string(Self.gatewayIssuer), "sub": .string("auth0|\(user)"), "aud": .string(Self.audience),
            "iat": .integer(Int64(Self.now.timeIntervalSince1970)),
            "exp": .integer(Int64(Self.now.timeIntervalSince1970) + 300), "scope": .string(scope),
            "client_id": "mcp-client", "act": ["sub": "mcp-client"], "jti": "j1",
            "sub_id": ["format": "iss_sub", "iss": .string(subjectIssuer), "sub": .string("auth0|\(user)")],
        ]
        for (name, value) in changes {
            if value == .null { claims.removeValue(forKey: name) } else { claims[name] = value }
        }
        return try (key ?? gatewayKey).sign(claims, type: type)
    }

    /// A Cloudflare Access assertion for `user` (a user's has `sub` and `email`; pass `sub: ""` and a
    /// `common_name` for a service token's).
    func assertion(_ user: String = "carol", changes: [String: JSONValue] = [:]) throws -> String {
        var claims: [String: JSONValue] = [
            "iss": .string(Self.accessTeam), "aud": [.string(Self.accessAudience)], "sub": .string("access-\(user)"),
            "email": .string("\(user)@example.com"), "type": "app",
            "iat": .integer(Int64(Self.now.timeIntervalSince1970)),
            "exp": .integer(Int64(Self.now.timeIntervalSince1970) + 3600),
        ]
        for (name, value) in changes {
            if value == .null { claims.removeValue(forKey: name) } else { claims[name] = value }
        }
        return try signingKey.sign(claims)
    }
}

func bearer(_ token: String) -> HTTPFields { [.authorization: "Bearer \(token)"] }

func json(_ text: String) -> ByteBuffer { ByteBuffer(string: text) }

extension HTTPFields {
    static func bearerJSON(_ token: String) -> HTTPFields {
        [.authorization: "Bearer \(token)", .contentType: "application/json"]
    }
}

/// The JSON body of a response.
func body(_ response: TestResponse) throws -> [String: JSONValue] {
    let value = try JSONDecoder().decode(JSONValue.self, from: Data(response.body.readableBytesView))
    guard case .object(let object) = value else { throw TestFailure("body is not a JSON object") }
    return object
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Asserts an error response: status, JSON `error` code, `Cache-Control: no-store`, and a challenge when expected.
func expectError(
    _ response: TestResponse, status: HTTPResponse.Status, code: String, challenge: String? = nil,
    sourceLocation: SourceLocation = #_sourceLocation
) throws {
    #expect(response.status == status, sourceLocation: sourceLocation)
    let object = try body(response)
    #expect(object["error"] == .string(code), sourceLocation: sourceLocation)
    #expect(object["error_description"]?.stringValue?.isEmpty == false, sourceLocation: sourceLocation)
    #expect(response.headers[.contentType]?.hasPrefix("application/json") == true, sourceLocation: sourceLocation)
    if let challenge {
        #expect(response.headers[.wwwAuthenticate] == challenge, sourceLocation: sourceLocation)
    }
}
