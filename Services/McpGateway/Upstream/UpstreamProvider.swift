import Foundation
import JSON
import JWTAuth
import Logging
import Resilience
import ServiceSupport
import Synchronization

/// The gateway as an OpenID Connect relying party of the upstream provider: discovery, the authorization request,
/// code exchange, ID token validation, and refresh. The provider's tokens never leave the server.
final class UpstreamProvider: Sendable {
    let configuration: UpstreamConfiguration
    let callbackURL: String
    let http: any UpstreamHTTP
    /// How long a request waits for the provider (`UPSTREAM_TIMEOUT`), and a refresh (`UPSTREAM_REFRESH_TIMEOUT`).
    let timeouts: (request: Duration, refresh: Duration)
    private let fetcher: any DocumentFetching
    private let clock: any WallClock
    /// Where the ID token's groups and roles are, for the tool policy.
    private let claimNames: IdentityClaimNames
    private let keys: JWKSCache
    private let discovered = Mutex<ProviderMetadata?>(nil)

    init(
        configuration: UpstreamConfiguration, callbackURL: String, http: any UpstreamHTTP,
        fetcher: any DocumentFetching, clock: any WallClock = SystemClock(),
        claimNames: IdentityClaimNames = IdentityClaimNames(),
        timeouts: (request: Duration, refresh: Duration) = (.seconds(10), .seconds(12)), logger: Logger
    ) {
        self.configuration = configuration
        self.timeouts = timeouts
        self.claimNames = claimNames
        self.callbackURL = callbackURL
        self.http = http
        self.fetcher = fetcher
        self.clock = clock
        let keySource: JWKSSource =
            switch configuration.endpoints {
            case .discovery: .discovery(issuer: configuration.issuer)
            case .explicit(_, _, let jwks, _): .url(jwks)
            }
        self.keys = JWKSCache(
            configuration: .init(
                source: keySource, allowedAlgorithms: configuration.idTokenAlgorithms.union([.rs256])),
            fetcher: self.fetcher, clock: clock, logger: logger)
        if case .explicit(let authorization, let token, let jwks, let userinfo) = configuration.endpoints {
            discovered.withLock {
                $0 = ProviderMetadata(
                    issuer: configuration.issuer, jwksURI: jwks, authorizationEndpoint: authorization,
                    tokenEndpoint: token, userinfoEndpoint: userinfo,
                    // GitHub documents its client credentials as form parameters.
                    tokenEndpointAuthMethods: configuration.github == nil
                        ? ["client_secret_basic"] : ["client_secret_post"])
            }
        }
    }

    /// The provider's endpoints: given explicitly, or from its discovery document, fetched once (and again after a
    /// failure).
    func metadata() async throws(UpstreamError) -> ProviderMetadata {
        if let metadata = discovered.withLock({ $0 }) { return metadata }
        do {
            let (issuer, fetcher) = (configuration.issuer, fetcher)
            let metadata = try await Deadline.run(
                within: timeouts.request, operation: "discovery of \(configuration.issuer)"
            ) { try await ProviderMetadata.discover(issuer: issuer, fetcher: fetcher) }
            guard metadata.authorizationEndpoint != nil, metadata.tokenEndpoint != nil else {
                throw UpstreamError.protocolViolation("discovery names no authorization or token endpoint")
            }
            discovered.withLock { $0 = metadata }
            return metadata
        } catch let error as UpstreamError {
            throw error
        } catch let error as DeadlineExceeded {
            throw .timedOut(error.description)
        } catch {
            throw .unreachable("discovery at \(JWKSSource.discovery(issuer: configuration.issuer)) failed: \(error)")
        }
    }

    /// Compares the provider's refresh-token reuse interval, when its discovery document states it (DevIdP does:
    /// `refresh_token_reuse_interval`), with what the gateway's deadlines need, and says so in the log: a provider that
    /// accepts a rotated refresh token again for less than `required` signs a user out whenever a refresh answer is
    /// lost (docs/operations.md). Run in the background at start-up; a provider that cannot be reached is skipped.
    func checkReuseInterval(required: Duration, stated: Duration?, logger: Logger) async {
        guard let metadata = try? await metadata(),
            let seconds = metadata.document["refresh_token_reuse_interval"]?.doubleValue
        else { return }
        let advertised = Duration.milliseconds(Int64(seconds * 1000))
        if advertised <= required {
            logger.error(
                """
                The provider accepts a rotated refresh token again for \(advertised.secondsText) only (its discovery \
                document says so), but this gateway may send one again up to \(required.secondsText) later: a lost \
                refresh answer would sign the user out. Set the provider's reuse interval to at least \
                \(required.wholeSecondsRoundedUp + 1) s (DevIdP: DEVIDP_REFRESH_REUSE_INTERVAL)
                """)
        } else if let stated, stated > advertised {
            logger.warning(
                "UPSTREAM_REUSE_INTERVAL is \(stated.secondsText) but the provider says \(advertised.secondsText)")
        }
    }

    /// The URL to send the browser to: code flow with PKCE S256, `state`, `nonce` and Auth0's `audience`.
    func authorizationURL(state: String, nonce: String, codeChallenge: String, scope: ScopeSet)
        async throws(UpstreamError)
        -> String
    {
        guard let endpoint = try await metadata().authorizationEndpoint else {
            throw .protocolViolation("no authorization_endpoint")
        }
        var parameters = [
            ("response_type", "code"), ("client_id", configuration.clientID), ("redirect_uri", callbackURL),
            ("scope", scope.description), ("state", state), ("nonce", nonce), ("code_challenge", codeChallenge),
            ("code_challenge_method", "S256"),
        ]
        if let audience = configuration.audience { parameters.append(("audience", audience)) }
        return RedirectURI.appending(parameters, to: endpoint)
    }

    /// Exchanges an authorization code (with the PKCE verifier only the server knows).
    func exchange(code: String, verifier: String) async throws(UpstreamError) -> UpstreamTokenResponse {
        try await tokenRequest([
            ("grant_type", "authorization_code"), ("code", code), ("redirect_uri", callbackURL),
            ("code_verifier", verifier),
        ])
    }

    /// Refreshes the user's upstream tokens. `invalidGrant` means the user must sign in again.
    ///
    /// Waits `UPSTREAM_REFRESH_TIMEOUT` for the answer, longer than a request waits: once sent, the refresh token may
    /// be spent, and what the provider answers must be stored even when the tool calls that wanted it gave up.
    func refresh(refreshToken: String) async throws(UpstreamError) -> UpstreamTokenResponse {
        try await tokenRequest(
            [("grant_type", "refresh_token"), ("refresh_token", refreshToken)], timeout: timeouts.refresh)
    }

    /// Exchanges the user's access token for one of `audience` with `scope` (RFC 8693 token exchange), for
    /// `DOWNSTREAM_TOKENS=exchange`. `invalidGrant` means the provider no longer accepts the user's token.
    func exchange(subjectToken: String, audience: String, scope: ScopeSet) async throws(UpstreamError)
        -> UpstreamTokenResponse
    {
        try await tokenRequest([
            ("grant_type", "urn:ietf:params:oauth:grant-type:token-exchange"), ("subject_token", subjectToken),
            ("subject_token_type", "urn:ietf:params:oauth:token-type:access_token"),
            ("requested_token_type", "urn:ietf:params:oauth:token-type:access_token"), ("audience", audience),
            ("scope", scope.description),
        ])
    }

    /// Verifies an ID token (OpenID Connect Core §3.1.3.7): signature by the provider's JWKS with an algorithm of
    /// `OIDC_ID_TOKEN_ALGORITHMS`, `iss`, `aud` containing our client id, `azp` (when present) our client id, `exp`,
    /// and `nonce`. A token without `kid` is accepted when the provider publishes exactly one key for its algorithm
    /// (§10.1); an access token (`typ: at+jwt`) is not an ID token.
    func validateIDToken(_ idToken: String, nonce: String) async throws(UpstreamError) -> UserProfile {
        let verifier = JWTVerifier(
            configuration: .init(
                issuer: configuration.issuer, audiences: [configuration.clientID],
                allowedAlgorithms: configuration.idTokenAlgorithms, cacheCapacity: 0,
                acceptedTypes: JWTVerifier.idTokenTypes, allowsMissingKeyID: true),
            keys: keys, clock: clock)
        let token: VerifiedToken
        do { token = try await verifier.verify(idToken) } catch {
            throw .protocolViolation(
                "the ID token is invalid: \(error.message.replacingOccurrences(of: "access token", with: "ID token"))")
        }
        if let authorizedParty = token.claims["azp"] {
            guard authorizedParty.stringValue == configuration.clientID else {
                throw .protocolViolation("the ID token's azp is another client than this gateway")
            }
        }
        guard let claimed = token.string("nonce"),
            SecretDigest.constantTimeEqual(Array(claimed.utf8), Array(nonce.utf8))
        else { throw .protocolViolation("the ID token's nonce does not match the sign-in") }
        guard let subject = token.subject else { throw .protocolViolation("the ID token has no subject") }
        let groups = claimNames.groups(in: token.claims)
        let roles = claimNames.roles(in: token.claims)
        return UserProfile(
            subject: subject, name: Self.displayName(token.claims), email: token.displayString("email"),
            groups: groups.isEmpty ? nil : groups, roles: roles.isEmpty ? nil : roles)
    }

    /// Fills in the name and email from the userinfo endpoint when the ID token left them out (OpenID Connect Core
    /// §5.4: with an access token, a provider may return profile claims only there). The userinfo `sub` must be the ID
    /// token's (§5.3.2); any failure leaves the profile as it was.
    func completeProfile(_ profile: UserProfile, accessToken: String) async -> UserProfile {
        guard profile.name == nil || profile.email == nil,
            let endpoint = try? await metadata().userinfoEndpoint,
            let reply = try? await get(
                endpoint, headers: [("Authorization", "Bearer \(accessToken)"), ("Accept", "application/json")]),
            reply.status == 200,
            let claims = try? JSONValue(parsing: reply.body).objectValue,
            claims["sub"]?.stringValue == profile.subject
        else { return profile }
        // Values with control characters are not used (ClaimText): the profile stays without them.
        var completed = profile
        completed.name = profile.name ?? Self.displayName(claims)
        completed.email = profile.email ?? claims["email"]?.stringValue.flatMap(Self.safe)
        return completed
    }

    /// `text`, unless it holds control characters.
    static func safe(_ text: String) -> String? { ClaimText.isSafe(text) ? text : nil }

    private static func isSafe(_ text: String) -> Bool { ClaimText.isSafe(text) }

    /// The first of `name`, `nickname` and `preferred_username` that has no character of ``ClaimText/isUnsafe(_:)``.
    private static func displayName(_ claims: [String: JSONValue]) -> String? {
        ["name", "nickname", "preferred_username"].lazy.compactMap { claims[$0]?.stringValue }.first(where: Self.isSafe)
    }

    /// The API scopes an upstream access token carries, when it is a JWT for our audience that verifies.
    func scopes(ofAccessToken accessToken: String) async -> ScopeSet? {
        guard let audience = configuration.audience else { return nil }
        let verifier = JWTVerifier(
            configuration: .init(issuer: configuration.issuer, audiences: [audience], cacheCapacity: 0),
            keys: keys, clock: clock)
        return try? await verifier.verify(accessToken).scopes
    }

    /// GETs `url` within `UPSTREAM_TIMEOUT`, body included.
    func get(_ url: String, headers: [(String, String)]) async throws -> (status: Int, body: [UInt8]) {
        let http = http
        return try await Deadline.run(within: timeouts.request, operation: "GET \(url)") {
            try await http.get(url, headers: headers)
        }
    }

    private func tokenRequest(_ parameters: [(String, String)], timeout: Duration? = nil) async throws(UpstreamError)
        -> UpstreamTokenResponse
    {
        let metadata = try await metadata()
        guard let endpoint = metadata.tokenEndpoint else { throw .protocolViolation("no token_endpoint") }
        var form = parameters
        var headers: [(String, String)] = [("Accept", "application/json")]
        // Basic unless the provider only advertises client_secret_post (RFC 8414 / OIDC Discovery default: Basic).
        if metadata.tokenEndpointAuthMethods.contains("client_secret_basic")
            || metadata.tokenEndpointAuthMethods.isEmpty
        {
            let credentials =
                RedirectURI.formEncode(configuration.clientID) + ":"
                + RedirectURI.formEncode(configuration.clientSecret)
            headers.append(("Authorization", "Basic " + Data(credentials.utf8).base64EncodedString()))
        } else {
            form += [("client_id", configuration.clientID), ("client_secret", configuration.clientSecret)]
        }
        let status: Int
        let json: [String: JSONValue]
        do {
            let (http, form, headers) = (http, form, headers)
            let reply = try await Deadline.run(within: timeout ?? timeouts.request, operation: "POST \(endpoint)") {
                try await http.post(form: form, to: endpoint, headers: headers)
            }
            status = reply.status
            json = (try? JSONValue(parsing: reply.body).objectValue) ?? [:]
        } catch let error as DeadlineExceeded {
            throw .timedOut(error.description)
        } catch {
            throw .unreachable("POST \(endpoint) failed: \(error)")
        }
        // GitHub answers errors with 200 and an `error` member.
        guard status == 200, json["error"] == nil else {
            let code = json["error"]?.stringValue ?? "http_\(status)"
            if code == "bad_verification_code" || code == "bad_refresh_token" {
                throw .invalidGrant(json["error_description"]?.stringValue ?? code)
            }
            let description = json["error_description"]?.stringValue ?? "HTTP \(status)"
            if code == "invalid_grant" { throw .invalidGrant(description) }
            if status >= 500 || json["error"] == nil { throw .unreachable("\(endpoint) answered \(status)") }
            throw .rejected(code: code, description: description)
        }
        return try UpstreamTokenResponse(json: json)
    }
}
