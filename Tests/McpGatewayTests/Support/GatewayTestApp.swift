import Foundation
import GRDB
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import JSON
import JWTAuth
import Logging
import NIOCore
import ServiceSupport
import TestSupport
import Testing

@testable import McpGateway

/// The gateway as in production, with an in-memory database, a manual clock and a fake upstream provider. TodosAPI is
/// not running (`apiBaseURL` points nowhere) unless a test says otherwise.
struct GatewayTestApp {
    static let publicURL = "http://localhost:8788"
    static let redirectURI = "http://localhost:3030/callback"
    private static let key = Task { try await RSASigningKey.generate() }
    /// The gateway's own signing key, not the provider's: a test must tell the two issuers apart.
    private static let gatewayKey = Task { try await RSASigningKey.generate() }
    /// One client for every test: an unreachable TodosAPI fails within a second.
    static let httpClient = OutboundHTTPClient.make(connectTimeout: .seconds(1))

    let clock = ManualClock(Date(timeIntervalSince1970: 1_750_000_000))
    /// What the gateway recorded as security events.
    let audit = LogCapture()
    let provider: FakeProvider
    /// The in-memory SQLite database, and the stores on it.
    let database: DatabaseQueue
    let storage: GatewayStorage
    let configuration: GatewayConfiguration
    private let running = RunningGateway()
    /// The sessions of the gateway `run` started.
    var sessions: SessionRegistry? { running.gateway?.mcp.sessions }

    /// `changeStorage` may wrap the stores (to make the database fail, say) before the gateway is built on them.
    init(environment: [String: String] = [:], changeStorage: (inout GatewayStorage) -> Void = { _ in }) async throws {
        var values = [
            "PUBLIC_URL": Self.publicURL, "AUTH0_DOMAIN": "idp.example.test", "AUTH0_CLIENT_ID": FakeProvider.clientID,
            "AUTH0_CLIENT_SECRET": FakeProvider.clientSecret,
            "COOKIE_ENCRYPTION_KEY": String(repeating: "c", count: 40),
            "GATEWAY_ENCRYPTION_KEY": String(repeating: "e", count: 40), "API_BASE_URL": "http://127.0.0.1:9",
        ]
        values.merge(environment) { _, new in new }
        self.configuration = try GatewayConfiguration.load(from: Settings(environment: values))
        self.provider = FakeProvider(key: try await Self.key.value, clock: clock)
        self.database = try SQLiteSchema.inMemory()
        var storage = GatewayStorage.sqlite(database)
        changeStorage(&storage)
        self.storage = storage
        // The gateway's signing key, made once for every test: generating an RSA key per test costs seconds of CPU
        // across the suite.
        _ = try await storage.signingKeys.insert(
            signingKey: try SigningKeyRing.stored(
                try await Self.gatewayKey.value, cipher: TokenCipher(secret: configuration.encryptionSecret),
                createdAt: clock.now.addingTimeInterval(-86_400)),
            unlessCreatedAfter: .distantPast)
    }

    func run(
        mode: TestingSetup = .router, _ test: @escaping @Sendable (any TestClientProtocol) async throws -> Void
    ) async throws {
        let gateway = try await Gateway.load(
            configuration: configuration,
            dependencies: GatewayDependencies(
                storage: storage, clock: clock, httpClient: Self.httpClient, documentFetcher: provider,
                upstreamHTTP: provider, apiConnectTimeout: .seconds(1), audit: AuditLog(logger: audit.logger)
            ),
            logger: Logger(label: "test"))
        running.gateway = gateway
        try await buildApplication(gateway: gateway, logger: Logger(label: "test")).test(mode, test)
    }
}

/// The gateway a test app is running, for tests that reach into its parts.
final class RunningGateway: @unchecked Sendable {
    var gateway: Gateway?
}

/// Cookies a browser would keep between requests.
final class CookieJar: @unchecked Sendable {
    private(set) var cookies: [String: String] = [:]

    func absorb(_ response: TestResponse) {
        for value in response.headers[values: .setCookie] {
            let pair = value.split(separator: ";", maxSplits: 1).first ?? ""
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2 else { continue }
            let name = String(parts[0])
            if value.contains("Max-Age=0") {
                cookies.removeValue(forKey: name)
            } else {
                cookies[name] = String(parts[1])
            }
        }
    }

    var header: HTTPFields {
        cookies.isEmpty ? [:] : [.cookie: cookies.map { "\($0.key)=\($0.value)" }.sorted().joined(separator: "; ")]
    }
}

struct PKCEPair {
    var verifier = PKCE.makeVerifier()
    var challenge: String { PKCE.challenge(for: verifier) }
}

/// What a signed-in client holds.
struct ClientTokens {
    let clientID: String
    let accessToken: String
    let refreshToken: String?
    let scope: String
}

extension TestClientProtocol {
    func postJSON(_ uri: String, _ body: String, headers: HTTPFields = [:]) async throws -> TestResponse {
        var headers = headers
        headers[.contentType] = "application/json"
        return try await execute(uri: uri, method: .post, headers: headers, body: ByteBuffer(string: body))
    }

    func postForm(_ uri: String, _ fields: [(String, String)], headers: HTTPFields = [:]) async throws -> TestResponse {
        var headers = headers
        headers[.contentType] = "application/x-www-form-urlencoded"
        return try await execute(uri: uri, method: .post, headers: headers, body: ByteBuffer(string: formBody(fields)))
    }

    /// Registers a public client (or a confidential one with `authMethod`); returns its id and secret.
    func registerClient(authMethod: String = "none", redirectURIs: [String] = [GatewayTestApp.redirectURI])
        async throws -> (id: String, secret: String?)
    {
        let uris = redirectURIs.map { "\"\($0)\"" }.joined(separator: ",")
        let response = try await postJSON(
            "/register",
            #"{"client_name":"Test Client","client_uri":"https://client.example","redirect_uris":[\#(uris)],"token_endpoint_auth_method":"\#(authMethod)"}"#
        )
        #expect(response.status == .created)
        let object = try jsonObject(response)
        return (try #require(object["client_id"]?.stringValue), object["client_secret"]?.stringValue)
    }

    /// `/authorize` → consent approved → upstream sign-in → `/callback`; returns the client's redirect query.
    func authorize(
        app: GatewayTestApp, clientID: String, pkce: PKCEPair, scope: String? = nil, subject: String = "auth0|alice",
        jar: CookieJar = CookieJar(), state: String = "client-state", sendRedirectURI: Bool = true,
        extra: [(String, String)] = []
    ) async throws -> [String: String] {
        var query = [
            ("response_type", "code"), ("client_id", clientID), ("code_challenge", pkce.challenge),
            ("code_challenge_method", "S256"), ("state", state), ("resource", GatewayTestApp.publicURL + "/mcp"),
        ]
        if sendRedirectURI { query.append(("redirect_uri", GatewayTestApp.redirectURI)) }
        if let scope { query.append(("scope", scope)) }
        query += extra
        let consent = try await execute(uri: "/authorize?" + formBody(query), method: .get, headers: jar.header)
        jar.absorb(consent)
        var upstream: String
        if consent.status == .ok {
            let html = String(buffer: consent.body)
            let approval = try await postForm(
                "/authorize",
                [
                    ("request_id", try #require(hiddenField("request_id", html))),
                    ("csrf_token", try #require(hiddenField("csrf_token", html))), ("decision", "approve"),
                ],
                headers: jar.header)
            #expect(approval.status == .seeOther)
            jar.absorb(approval)
            upstream = try #require(approval.headers[.location])
        } else {
            #expect(consent.status == .found)
            upstream = try #require(consent.headers[.location])
        }
        #expect(upstream.hasPrefix(FakeProvider.issuer + "authorize?"))
        let upstreamQuery = queryItems(upstream)
        let code = "upstream-code-\(UUID().uuidString)"
        app.provider.issue(code: code, nonce: try #require(upstreamQuery["nonce"]), subject: subject)
        let callback = try await execute(
            uri: "/callback?" + formBody([("code", code), ("state", try #require(upstreamQuery["state"]))]),
            method: .get,
            headers: jar.header)
        #expect(callback.status == .found)
        jar.absorb(callback)
        let location = try #require(callback.headers[.location])
        #expect(location.hasPrefix(GatewayTestApp.redirectURI + "?"))
        return queryItems(location)
    }

    /// Registers a public client, signs in and exchanges the code.
    func signIn(app: GatewayTestApp, scope: String? = nil, subject: String = "auth0|alice") async throws -> ClientTokens
    {
        let client = try await registerClient()
        let pkce = PKCEPair()
        let redirect = try await authorize(app: app, clientID: client.id, pkce: pkce, scope: scope, subject: subject)
        let response = try await postForm(
            "/token",
            [
                ("grant_type", "authorization_code"), ("code", try #require(redirect["code"])),
                ("client_id", client.id),
                ("redirect_uri", GatewayTestApp.redirectURI), ("code_verifier", pkce.verifier),
            ])
        #expect(response.status == .ok)
        let tokens = try jsonObject(response)
        return ClientTokens(
            clientID: client.id, accessToken: try #require(tokens["access_token"]?.stringValue),
            refreshToken: tokens["refresh_token"]?.stringValue, scope: tokens["scope"]?.stringValue ?? "")
    }
}

func formBody(_ fields: [(String, String)]) -> String {
    fields.map { "\(RedirectURI.formEncode($0.0))=\(RedirectURI.formEncode($0.1))" }.joined(separator: "&")
}

func queryItems(_ url: String) -> [String: String] {
    Dictionary(
        (URLComponents(string: url)?.queryItems ?? []).map { ($0.name, $0.value ?? "") },
        uniquingKeysWith: { first, _ in first })
}

func hiddenField(_ name: String, _ html: String) -> String? {
    guard let range = html.range(of: #"name="\#(name)" value=""#) else { return nil }
    return String(html[range.upperBound...].prefix(while: { $0 != "\"" }))
}

func jsonObject(_ response: TestResponse) throws -> [String: JSONValue] {
    try JSONDecoder().decode([String: JSONValue].self, from: Data(response.body.readableBytesView))
}

/// Asserts an OAuth JSON error: status, `error` code, `Cache-Control: no-store`.
func expectOAuthError(
    _ response: TestResponse, _ status: HTTPResponse.Status, _ code: String,
    sourceLocation: SourceLocation = #_sourceLocation
) throws {
    #expect(response.status == status, sourceLocation: sourceLocation)
    let error = try jsonObject(response)["error"]
    #expect(error == .string(code), sourceLocation: sourceLocation)
    #expect(response.headers[.cacheControl] == "no-store", sourceLocation: sourceLocation)
    #expect(response.headers[.location] == nil, sourceLocation: sourceLocation)
}

func bearer(_ token: String) -> HTTPFields { [.authorization: "Bearer \(token)"] }

extension LogCapture {
    /// The audit events recorded, each as its `audit.event` and the rest of its metadata.
    var auditEvents: [(event: String, metadata: [String: String])] {
        records.compactMap { record in
            guard let event = record.metadata["audit.event"] else { return nil }
            return ("\(event)", record.metadata.mapValues { "\($0)" })
        }
    }
}
