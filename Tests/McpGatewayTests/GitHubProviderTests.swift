import Foundation
import JSON
import JWTAuth
import Logging
import ServiceSupport
import TestSupport
import Testing

@testable import McpGateway

/// GitHub as the provider: its settings, the user from its REST API, and tokens that never expire checked again every
/// hour instead of refreshed.
@Suite("GitHub as the provider")
struct GitHubProviderTests {
    let clock = ManualClock(Date(timeIntervalSince1970: 1_750_000_000))
    let cipher = TokenCipher(secret: String(repeating: "k", count: 40))

    static let environment = [
        "GITHUB_CLIENT_ID": "Iv1.app", "GITHUB_CLIENT_SECRET": "app-secret",
        "COOKIE_ENCRYPTION_KEY": String(repeating: "c", count: 40),
        "GATEWAY_ENCRYPTION_KEY": String(repeating: "e", count: 40),
    ]

    @Test func settings() throws {
        let configuration = try GatewayConfiguration.load(from: Settings(environment: Self.environment))
        guard case .authorizationServer(let server) = configuration.mode else {
            Issue.record("not gateway mode")
            return
        }
        let upstream = server.upstream
        #expect(upstream.github == GitHubProvider(apiURL: "https://api.github.com"))
        #expect(upstream.issuer == "https://github.com" && upstream.displayName == "GitHub")
        #expect(
            upstream.endpoints
                == .explicit(
                    authorization: "https://github.com/login/oauth/authorize",
                    token: "https://github.com/login/oauth/access_token", jwks: "https://api.github.com/none",
                    userinfo: "https://api.github.com/user"))
        #expect(
            upstream.scope == ["read:user", "user:email"] && upstream.grantedScopes == ["read:todos", "write:todos"])
        #expect(configuration.downstream.kind == .mint)
        // A GitHub Enterprise Server: its API under /api/v3.
        let enterprise = try GatewayConfiguration.load(
            from: Settings(environment: Self.environment.merging(["GITHUB_URL": "https://git.example.com/"]) { $1 }))
        if case .authorizationServer(let server) = enterprise.mode {
            #expect(server.upstream.github?.apiURL == "https://git.example.com/api/v3")
        }
    }

    @Test(arguments: [
        (["DOWNSTREAM_TOKENS": "upstream"], "DOWNSTREAM_TOKENS"),
        (["AUTH0_DOMAIN": "acme.us.auth0.com"], "AUTH0_DOMAIN"),
        (["GITHUB_URL": "http://github.example.com"], "GITHUB_URL"),
        (["GITHUB_CLIENT_SECRET": ""], "GITHUB_CLIENT_SECRET"),
    ])
    func badSettingsNameTheVariable(changes: [String: String], variable: String) {
        var environment = Self.environment.merging(changes) { $1 }
        environment = environment.filter { !$0.value.isEmpty }
        let error = #expect(throws: ConfigurationError.self) {
            _ = try GatewayConfiguration.load(from: Settings(environment: environment))
        }
        #expect(error?.variable == variable)
    }

    func service(_ provider: FakeProvider, store: GatewayStorage) throws -> (UpstreamProvider, UpstreamTokenService) {
        let configuration = try #require(
            try GitHubProvider.load(
                from: Settings(environment: Self.environment.merging(["GITHUB_URL": "https://github.test"]) { $1 })))
        let upstream = UpstreamProvider(
            configuration: configuration, callbackURL: "http://localhost:8788/callback", http: provider,
            fetcher: provider, clock: clock, logger: Logger(label: "test"))
        return (
            upstream,
            UpstreamTokenService(
                grants: store.grants, upstreamTokens: store.upstreamTokens, refresher: upstream, cipher: cipher,
                clock: clock, logger: Logger(label: "test"))
        )
    }

    /// A grant holding a GitHub token, expired for the gateway's purposes (GitHub gives no `expires_in`).
    func seed(_ store: GatewayStorage) async throws {
        try await store.clients.insert(
            client: RegisteredClient(
                id: "c", secretDigest: nil, authMethod: .none, name: nil, uri: nil, logoURI: nil,
                redirectURIs: ["http://localhost/cb"], grantTypes: ["authorization_code"], createdAt: clock.now))
        let upstream = try UpstreamTokenVault(cipher: cipher).seal(
            UpstreamTokenResponse(json: ["access_token": "gho_token"]), grantID: "g", now: clock.now, previous: nil)
        try await store.grants.insert(
            grant: Grant(
                id: "g", clientID: "c", user: UserProfile(subject: "github|583231"), scope: ["read:todos"],
                resource: "r", upstream: upstream, createdAt: clock.now, expiresAt: clock.now.addingTimeInterval(86_400)
            ),
            issuing: IssuedTokens(
                access: AccessTokenRecord(
                    digest: "a", grantID: "g", clientID: "c", scope: ["read:todos"], resource: "r",
                    expiresAt: clock.now.addingTimeInterval(3600))))
        clock.advance(by: 3600)
    }

    @Test func theUserComesFromTheRESTAPI() async throws {
        let provider = FakeProvider(key: try await RSASigningKey.generate(), clock: clock)
        let (upstream, _) = try service(provider, store: .sqlite(try SQLiteSchema.inMemory()))
        let user = try await upstream.githubUser(accessToken: "gho_token")
        // Not github.com: the Enterprise Server's ids are named with its host.
        #expect(user.subject == "github|github.test|583231")
        #expect(user.name == "octocat" && user.email == "octocat@github.example")
    }

    @Test func anHourLaterTheTokenIsCheckedAgainNotRefreshed() async throws {
        let provider = FakeProvider(key: try await RSASigningKey.generate(), clock: clock)
        let store = GatewayStorage.sqlite(try SQLiteSchema.inMemory())
        try await seed(store)
        let (_, service) = try service(provider, store: store)
        #expect(try await service.accessToken(grantID: "g") == "gho_token")
        let grant = try #require(try await store.grants.grant(id: "g"))
        #expect(grant.upstream?.expiresAt == clock.now.addingTimeInterval(3600))
        #expect(provider.snapshot.refreshCount == 0)
        // GitHub unreachable: the grant is kept, the call fails for now.
        clock.advance(by: 3600)
        provider.update { $0.githubUserStatus = 502 }
        await #expect(throws: UpstreamAccessError.self) { _ = try await service.accessToken(grantID: "g") }
        #expect(try await store.grants.grant(id: "g")?.revokedAt == nil)
        // The user revoked the app at GitHub: the grant ends.
        provider.update { $0.githubUserStatus = 401 }
        await #expect(throws: UpstreamAccessError.signInRequired) { _ = try await service.accessToken(grantID: "g") }
        #expect(try await store.grants.grant(id: "g")?.revokedAt != nil)
    }
}
