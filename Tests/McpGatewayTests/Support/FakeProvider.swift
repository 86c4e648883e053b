import Foundation
import JSON
import JWTAuth

@testable import McpGateway

/// An upstream OpenID provider in memory: serves discovery and JWKS, answers the token endpoint, and counts what it
/// is asked. Tests decide what each code and refresh token yields.
final class FakeProvider: DocumentFetching, UpstreamHTTP, @unchecked Sendable {
    static let issuer = "https://idp.example.test/"
    static let clientID = "gateway-client"
    static let clientSecret = "gateway-secret"
    static let audience = "urn:todos-api"
    /// A Cloudflare Access team whose certificates are this provider's key.
    static let accessTeam = "https://acme.cloudflareaccess.com"

    enum RefreshBehaviour {
        case succeed
        case invalidGrant
        case unreachable
        /// Answers 503 with an HTML body, as a load balancer in front of a provider that is down.
        case serverError
        /// Never answers, and ignores cancellation (as a driver that loses a promise): only a deadline that does not
        /// wait for it gets the caller out. ``releaseHungRefreshes()`` ends them.
        case hang
    }

    struct State {
        var nonces: [String: String] = [:]  // code → nonce
        var users: [String: String] = [:]  // code → subject
        var grantedScope: String? = nil
        var exchangeFails = false
        var refreshBehaviour = RefreshBehaviour.succeed
        var refreshCount = 0
        /// The refresh tokens presented, in order.
        var refreshTokens: [String] = []
        /// How long a refresh takes, to widen the window in which callers overlap.
        var refreshDelay: Duration = .zero
        var exchangeCount = 0
        var accessLifetime: TimeInterval = 3600
        var lastForm: [String: String] = [:]
        var lastHeaders: [String: String] = [:]
        /// How GitHub's `GET /user` answers (the provider as GitHub).
        var githubUserStatus = 200
        /// Claims set on (or, `.null`, removed from) the ID tokens the token endpoint issues.
        var idTokenChanges: [String: JSONValue] = [:]
    }

    let key: RSASigningKey
    let clock: any WallClock
    private let lock = NSLock()
    private var current = State()
    private var hung: [CheckedContinuation<Void, Never>] = []

    /// Lets every refresh that ``RefreshBehaviour/hang``s end (with a 503), so that a test leaves no task behind.
    func releaseHungRefreshes() {
        let waiting = withState { _ in
            defer { hung = [] }
            return hung
        }
        for continuation in waiting { continuation.resume() }
    }

    init(key: RSASigningKey, clock: any WallClock) {
        self.key = key
        self.clock = clock
    }

    func update(_ change: (inout State) -> Void) { withState(change) }
    var snapshot: State { withState { $0 } }

    private func withState<T>(_ body: (inout State) -> T) -> T {
        lock.lock()
        defer { lock.unlock() }
        return body(&current)
    }

    /// Makes `code` valid at the token endpoint, for the sign-in that was sent `nonce`.
    func issue(code: String, nonce: String, subject: String = "auth0|alice") {
        withState {
            $0.nonces[code] = nonce
            $0.users[code] = subject
        }
    }

    func fetch(_ url: String) async throws -> FetchedDocument {
        let encoder = JSONEncoder()
        switch url {
        case Self.issuer + ".well-known/openid-configuration":
            let document: JSONValue = [
                "issuer": .string(Self.issuer), "authorization_endpoint": .string(Self.issuer + "authorize"),
                "token_endpoint": .string(Self.issuer + "oauth/token"), "jwks_uri": .string(Self.issuer + "jwks"),
                "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            ]
            return FetchedDocument(body: Array(try encoder.encode(document)))
        case Self.issuer + "jwks", Self.accessTeam + "/cdn-cgi/access/certs":
            return FetchedDocument(
                body: Array(try encoder.encode(JSONValue.object(["keys": [.object(key.publicJWK)]]))))
        default:
            throw DocumentFetchError("no document at \(url)")
        }
    }

    /// A JWT signed with the provider's key: an access token of an external authorization server, or an Access
    /// assertion.
    func sign(_ claims: [String: JSONValue], type: String? = "JWT") throws -> String {
        try key.sign(claims, type: type)
    }

    func post(form: [(String, String)], to url: String, headers: [(String, String)]) async throws
        -> (status: Int, body: [UInt8])
    {
        let parameters = Dictionary(form, uniquingKeysWith: { first, _ in first })
        let now = clock.now
        let current = withState { state -> State in
            state.lastForm = parameters
            state.lastHeaders = Dictionary(headers, uniquingKeysWith: { first, _ in first })
            return state
        }
        switch parameters["grant_type"] {
        case "authorization_code":
            withState { $0.exchangeCount += 1 }
            guard !current.exchangeFails, let code = parameters["code"], let nonce = current.nonces[code],
                let subject = current.users[code]
            else { return try Self.error("invalid_grant", "Invalid authorization code") }
            return try tokens(
                subject: subject, nonce: nonce, now: now, lifetime: current.accessLifetime,
                scope: current.grantedScope)
        case "refresh_token":
            withState {
                $0.refreshCount += 1
                $0.refreshTokens.append(parameters["refresh_token"] ?? "")
            }
            if current.refreshDelay > .zero { try await Task.sleep(for: current.refreshDelay) }
            if case .hang = current.refreshBehaviour {
                await withCheckedContinuation { continuation in withState { _ in hung.append(continuation) } }
                return (503, Array("<html>gone</html>".utf8))
            }
            switch current.refreshBehaviour {
            case .succeed:
                return try tokens(
                    subject: "auth0|alice", nonce: nil, now: now, lifetime: current.accessLifetime,
                    scope: current.grantedScope)
            case .invalidGrant: return try Self.error("invalid_grant", "Unknown or invalid refresh token.")
            case .unreachable: throw DocumentFetchError("connection refused")
            case .serverError: return (503, Array("<html>Service Unavailable</html>".utf8))
            case .hang: return (503, [])
            }
        default:
            return try Self.error("unsupported_grant_type", "no")
        }
    }

    func get(_ url: String, headers: [(String, String)]) async throws -> (status: Int, body: [UInt8]) {
        // The provider as GitHub's REST API.
        if url.hasSuffix("/user") {
            let status = withState { $0.githubUserStatus }
            return (status, Array(#"{"id":583231,"login":"octocat","name":null,"email":null}"#.utf8))
        }
        if url.hasSuffix("/user/emails") {
            return (
                200,
                Array(
                    #"[{"email":"old@github.example","primary":false,"verified":true},{"email":"octocat@github.example","primary":true,"verified":true}]"#
                        .utf8)
            )
        }
        return (404, [])
    }

    private func tokens(subject: String, nonce: String?, now: Date, lifetime: TimeInterval, scope: String?) throws
        -> (status: Int, body: [UInt8])
    {
        let iat = JSONValue.integer(Int64(now.timeIntervalSince1970))
        let exp = JSONValue.integer(Int64(now.addingTimeInterval(lifetime).timeIntervalSince1970))
        let granted = scope ?? "openid profile email offline_access read:todos read:billing write:todos"
        let access = try key.sign([
            "iss": .string(Self.issuer), "sub": .string(subject), "aud": .string(Self.audience), "iat": iat, "exp": exp,
            "scope": .string(granted),
        ])
        var body: [String: JSONValue] = [
            "access_token": .string(access), "token_type": "Bearer", "expires_in": .integer(Int64(lifetime)),
            "refresh_token": .string("upstream-refresh-\(UUID().uuidString)"), "scope": .string(granted),
        ]
        if let nonce {
            var claims: [String: JSONValue] = [
                "iss": .string(Self.issuer), "sub": .string(subject), "aud": .string(Self.clientID), "iat": iat,
                "exp": exp, "nonce": .string(nonce), "name": "Alice Example", "email": "alice@example.com",
            ]
            for (name, value) in withState({ $0.idTokenChanges }) {
                if value == .null { claims.removeValue(forKey: name) } else { claims[name] = value }
            }
            body["id_token"] = .string(try key.sign(claims))
        }
        return (200, Array(try JSONEncoder().encode(body)))
    }

    private static func error(_ code: String, _ description: String) throws -> (status: Int, body: [UInt8]) {
        (400, Array(try JSONEncoder().encode(["error": code, "error_description": description])))
    }
}
