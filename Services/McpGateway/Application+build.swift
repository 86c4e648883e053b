import AsyncHTTPClient
import Foundation
import Hummingbird
import JWTAuth
import Logging
import NIOCore
import ServiceLifecycle
import ServiceSupport

/// What the gateway needs from outside, injectable for tests.
struct GatewayDependencies: Sendable {
    /// The gateway's stores: every one in `AUTH_MODE=gateway`, the signing keys of downstream tokens in every mode.
    var storage: GatewayStorage?
    var clock: any WallClock = SystemClock()
    var httpClient: HTTPClient = .shared
    /// Fetches discovery documents and key sets; by default over HTTP with `httpClient`.
    var documentFetcher: (any DocumentFetching)?
    /// Calls the provider's token and userinfo endpoints; by default over HTTP with `httpClient`.
    var upstreamHTTP: (any UpstreamHTTP)?
    /// How long connecting to TodosAPI may take before a tool call reports it unreachable; `API_CONNECT_TIMEOUT` when
    /// not set.
    var apiConnectTimeout: TimeAmount?
    /// Resolves the host names of client metadata document URLs before the gateway connects to them.
    var hostResolver: any HostResolving = SystemHostResolver()
}

/// The parts of the gateway's own authorization server (`AUTH_MODE=gateway`).
struct AuthorizationServer: Sendable {
    let settings: AuthorizationServerSettings
    /// The stores, the access-token lookups going through ``AccessTokenCache``.
    let storage: GatewayStorage
    let clients: ClientDirectory
    let upstream: UpstreamProvider
    let cipher: TokenCipher
    let cookies: CookieSigner
    let upstreamTokens: UpstreamTokenService
    /// How clients authenticate at `/token` and `/revoke`.
    let clientAuthenticator: ClientAuthenticator
    /// The JWT-bearer grant of identity assertions, when trusted issuers are configured.
    let identityAssertions: JWTBearerGrant?
    /// DPoP proofs at `/token` and the MCP endpoints.
    let dpop: DPoPChecker
}

/// The gateway's parts, built once, shared by the routes.
struct Gateway: Sendable {
    let configuration: GatewayConfiguration
    let clock: any WallClock
    let pages: PageRenderer
    /// The MCP server both transports share: tools, sessions, limits.
    let mcp: MCPServer
    /// The connections to TodosAPI.
    let api: KeepAliveHTTPClient
    let authenticator: any MCPAuthenticator
    /// Present in `AUTH_MODE=gateway` only.
    let authorizationServer: AuthorizationServer?
    /// The keys downstream tokens are signed with (``DownstreamTokenMinter``).
    let signingKeys: SigningKeyRing
    /// What `/ready` checks: the database (gateway mode), the token issuer's keys (external and access modes).
    let readiness: [ReadinessCheck]

    init(configuration: GatewayConfiguration, dependencies: GatewayDependencies, logger: Logger) async throws {
        self.configuration = configuration
        self.clock = dependencies.clock
        self.pages = try await PageRenderer.load()
        let timeouts = configuration.timeouts
        let fetcher =
            dependencies.documentFetcher
            ?? HTTPDocumentFetcher(client: dependencies.httpClient, timeout: TimeAmount(timeouts.upstream))
        guard var storage = dependencies.storage else {
            throw ConfigurationError(
                variable: "GATEWAY_DATABASE", problem: "was not opened", example: ".data/gateway.sqlite")
        }
        let cipher = TokenCipher(
            secret: configuration.encryptionSecret, previousSecrets: configuration.previousEncryptionSecrets)
        // The tokens the gateway signs for TodosAPI: for every call when DOWNSTREAM_TOKENS=mint, and for grants that
        // hold no provider token whatever the setting. The keys are loaded (or made) now.
        let ring = SigningKeyRing(
            store: storage.signingKeys, cipher: cipher,
            schedule: .init(
                rotation: configuration.downstream.keyRotation,
                retention: configuration.downstream.lifetime + Self.verifierLeeway),
            logger: logger)
        try await ring.refresh(now: dependencies.clock.now)
        self.signingKeys = ring
        let minter = DownstreamTokenMinter(
            issuer: configuration.address.issuer, subjectIssuer: configuration.mode.subjectIssuer,
            audience: configuration.downstream.audience,
            lifetime: configuration.downstream.lifetime, keys: ring, clock: dependencies.clock)
        var readiness: [ReadinessCheck] = [Self.databaseAnswers(storage.maintenance, logger: logger)]
        switch configuration.mode {
        case .authorizationServer(let settings):
            storage.accessTokens = AccessTokenCache(wrapping: storage.accessTokens, feed: storage.changes)
            let upstream = UpstreamProvider(
                configuration: settings.upstream, callbackURL: configuration.address.callbackURL,
                http: dependencies.upstreamHTTP ?? AsyncUpstreamHTTP(client: dependencies.httpClient), fetcher: fetcher,
                clock: dependencies.clock, claimNames: configuration.identityClaims,
                timeouts: (timeouts.upstream, timeouts.upstreamRefresh), logger: logger)
            Task {
                await upstream.checkReuseInterval(
                    required: timeouts.requiredReuseInterval, stated: timeouts.upstreamReuseInterval, logger: logger)
            }
            try await UpstreamTokenResealer.checkKeys(
                upstreamTokens: storage.upstreamTokens, cipher: cipher, now: dependencies.clock.now)
            let upstreamTokens = UpstreamTokenService(
                grants: storage.grants, upstreamTokens: storage.upstreamTokens, refresher: upstream, cipher: cipher,
                clock: dependencies.clock, logger: logger, sharedDatabase: storage.backend != "sqlite",
                timeouts: .init(
                    wait: timeouts.upstream, refresh: timeouts.upstreamRefresh, database: timeouts.database))
            let documents = settings.clientMetadataDocuments
            let clients = ClientDirectory(
                store: storage.clients,
                documents: documents.enabled
                    ? ClientMetadataDocuments(
                        fetcher: HTTPClientMetadataFetcher(
                            policy: PublicAddressPolicy(allowPrivate: documents.allowPrivateAddresses),
                            resolver: dependencies.hostResolver, timeout: timeouts.clientMetadata),
                        store: storage.clients, clock: dependencies.clock,
                        allowLoopbackHTTP: documents.allowPrivateAddresses,
                        logger: logger)
                    : nil)
            let oneTime = OneTimeAssertion(usedAssertions: storage.usedAssertions, clock: dependencies.clock)
            let dpop = DPoPChecker(
                nonces: DPoPNonces(secret: configuration.encryptionSecret), usedProofs: storage.usedAssertions,
                clock: dependencies.clock, nonceRequired: settings.dpopNonceRequired)
            let identityAssertions: JWTBearerGrant? =
                settings.identityAssertionIssuers.isEmpty
                ? nil
                : JWTBearerGrant(
                    issuers: JWTBearerGrant.verifiers(
                        issuers: settings.identityAssertionIssuers, audience: configuration.address.issuer, fetcher: fetcher,
                        clock: dependencies.clock, logger: logger),
                    oneTime: oneTime,
                    issuing: GrantWithoutCode(
                        grants: storage.grants, accessTokenLifetime: settings.accessTokenLifetime,
                        resource: configuration.address.resource),
                    resources: configuration.address.resourceNames, signInIssuer: settings.upstream.issuer,
                    claimNames: configuration.identityClaims)
            self.authorizationServer = AuthorizationServer(
                settings: settings, storage: storage, clients: clients, upstream: upstream, cipher: cipher,
                cookies: CookieSigner(secret: settings.cookieSecret, secure: configuration.address.isHTTPS),
                upstreamTokens: upstreamTokens,
                clientAuthenticator: ClientAuthenticator(
                    clients: clients,
                    assertions: ClientAssertions(
                        clients: clients,
                        keys: ClientKeys(fetcher: fetcher, clock: dependencies.clock, logger: logger),
                        oneTime: oneTime, audiences: [configuration.address.issuer, configuration.publicURL + "/token"])),
                identityAssertions: identityAssertions, dpop: dpop)
            self.authenticator = GatewayTokenAuthenticator(
                address: configuration.address, accessTokens: storage.accessTokens, tokens: upstreamTokens,
                downstream: GrantDownstreamCredentials(
                    kind: configuration.downstream.kind, minter: minter,
                    exchanges: configuration.downstream.kind == .exchange
                        ? TokenExchanges(
                            provider: upstream, grants: storage.grants, audience: configuration.downstream.audience,
                            clock: dependencies.clock, logger: logger, wait: timeouts.upstream) : nil),
                dpop: dpop, clock: dependencies.clock)
        case .externalAuthorizationServer(let settings):
            self.authorizationServer = nil
            let keys = JWKSCache(
                configuration: .init(source: settings.jwksSource), fetcher: fetcher, clock: dependencies.clock,
                logger: logger)
            readiness.append(Self.keysLoaded(keys))
            self.authenticator = ExternalTokenAuthenticator(
                verifier: JWTVerifier(
                    configuration: .init(issuer: settings.issuer, audiences: settings.audiences), keys: keys,
                    clock: dependencies.clock),
                minter: minter, claimNames: configuration.identityClaims)
        case .cloudflareAccess(let settings):
            self.authorizationServer = nil
            let keys = JWKSCache(
                configuration: .init(source: .url(settings.certsURL)), fetcher: fetcher, clock: dependencies.clock,
                logger: logger)
            readiness.append(Self.keysLoaded(keys))
            self.authenticator = AccessAssertionAuthenticator(
                settings: settings,
                verifier: JWTVerifier(
                    configuration: CloudflareAccess.verifierConfiguration(
                        teamDomain: settings.teamDomain, audiences: settings.audiences),
                    keys: keys, clock: dependencies.clock),
                minter: minter, claimNames: configuration.identityClaims)
        }
        readiness.append(
            ReadinessCheck("downstream_signing_keys") {
                ring.keys == nil ? "the keys downstream tokens are signed with are not loaded" : nil
            })
        self.readiness = readiness
        guard let origin = KeepAliveHTTPClient.Origin(configuration.apiBaseURL) else {
            throw ConfigurationError(
                variable: "API_BASE_URL", problem: "must be an http or https URL", example: "http://localhost:8789")
        }
        self.api = try KeepAliveHTTPClient(
            origin: origin,
            configuration: .init(connectTimeout: dependencies.apiConnectTimeout ?? TimeAmount(timeouts.apiConnect)))
        let tools = ToolBox.todos(
            api: TodosAPIClient(http: api, timeout: TimeAmount(timeouts.api), logger: logger),
            policy: configuration.toolPolicy)
        // Behind Cloudflare Access there is no authorization server to step up with: a missing scope is a tool error.
        let stepUp: Bool =
            switch configuration.mode {
            case .cloudflareAccess: false
            default: true
            }
        self.mcp = MCPServer(
            tools: tools, limits: configuration.mcp, sessionSecret: configuration.sessionSecret, stepUp: stepUp,
            resourceMetadataURL: configuration.address.resourceMetadataURL, clock: dependencies.clock, logger: logger)
    }
}

extension Gateway {
    /// The clock skew verifiers allow on `exp`: a replaced signing key stays published this much longer than its last
    /// token's lifetime.
    static let verifierLeeway: TimeInterval = 300

    /// Ready while the database answers. The detail of a failure (addresses, server messages) goes to the log, not to
    /// whoever asks `/ready`.
    static func databaseAnswers(_ maintenance: any StoreMaintenance, logger: Logger) -> ReadinessCheck {
        ReadinessCheck("database") {
            do {
                try await maintenance.ping()
                return nil
            } catch {
                logger.warning("Readiness: the database does not answer", metadata: ["error": "\(error)"])
                return "the database does not answer"
            }
        }
    }

    /// Ready once the token issuer's keys have been fetched: until then every request would be refused.
    /// The keys are fetched now, in the background; a provider that is down is fetched again on the next request.
    static func keysLoaded(_ keys: JWKSCache) -> ReadinessCheck {
        Task { await keys.refresh() }
        return ReadinessCheck("signing_keys") {
            if keys.currentKeys != nil { return nil }
            await keys.refresh()
            return keys.currentKeys == nil ? "the issuer's signing keys could not be fetched yet" : nil
        }
    }
}

/// Builds the gateway: the MCP endpoint for every mode, plus the OAuth authorization server, consent and upstream
/// sign-in in `AUTH_MODE=gateway`.
func buildApplication(gateway: Gateway, logger: Logger) -> some ApplicationProtocol {
    let configuration = gateway.configuration
    let origins = OriginPolicy(allowed: configuration.allowedOrigins, address: configuration.address)
    let router = Router(context: GatewayRequestContext.self)
    router.add(middleware: AccessLogMiddleware())
    router.add(middleware: CORSMiddleware(origins: origins))
    router.add(middleware: ErrorRenderingMiddleware())
    router.add(middleware: BrowserErrorPages(pages: gateway.pages))

    router.get("health") { _, _ in HealthStatus(at: gateway.clock.now) }
    Readiness.addRoute(to: router, checks: gateway.readiness)
    if configuration.metricsEnabled { ServiceMetrics.addRoute(to: router, token: configuration.metricsToken) }
    HomeController(configuration: configuration, pages: gateway.pages).addRoutes(to: router)
    switch configuration.mode {
    case .authorizationServer(let settings):
        ProtectedResourceMetadataController(
            address: configuration.address, authorizationServers: [configuration.address.issuer], dpopBoundTokens: true
        ).addRoutes(to: router)
        AuthorizationServerMetadataController(address: configuration.address, settings: settings).addRoutes(to: router)
    case .externalAuthorizationServer(let settings):
        ProtectedResourceMetadataController(
            address: configuration.address, authorizationServers: [settings.issuer], dpopBoundTokens: false
        ).addRoutes(to: router)
    case .cloudflareAccess:
        break
    }
    JWKSController(keys: gateway.signingKeys).addRoutes(to: router)
    if let server = gateway.authorizationServer {
        let storage = server.storage
        let signIn = UpstreamSignIn(
            pendingSignIns: storage.pendingSignIns,
            upstream: server.upstream, cipher: server.cipher, cookies: server.cookies, clock: gateway.clock)
        let limits = configuration.rateLimits
        RegistrationController(clients: storage.clients, clock: gateway.clock).addRoutes(
            to: limits.limited(router, route: "/register", limits.register, pages: gateway.pages))
        AuthorizeController(
            address: configuration.address, settings: server.settings, clients: server.clients, signIn: signIn,
            cookies: server.cookies, cipher: server.cipher, pages: gateway.pages, clock: gateway.clock,
            usedTickets: storage.usedAssertions
        ).addRoutes(to: limits.limited(router, route: "/authorize", limits.authorize, pages: gateway.pages, browser: true))
        CallbackController(
            address: configuration.address, grantLifetime: server.settings.grantLifetime, pendingSignIns: storage.pendingSignIns,
            codes: storage.codes, upstream: server.upstream, cipher: server.cipher, cookies: server.cookies,
            pages: gateway.pages, clock: gateway.clock
        ).addRoutes(to: router)
        TokenController(
            address: configuration.address, settings: server.settings, codes: storage.codes, grants: storage.grants,
            refreshTokens: storage.refreshTokens, clients: server.clients, authenticator: server.clientAuthenticator,
            identityAssertions: server.identityAssertions, dpop: server.dpop, clock: gateway.clock
        )
        .addRoutes(to: limits.limited(router, route: "/token", limits.token, pages: gateway.pages))
        RevocationController(
            accessTokens: storage.accessTokens, refreshTokens: storage.refreshTokens, grants: storage.grants,
            authenticator: server.clientAuthenticator, clock: gateway.clock
        ).addRoutes(to: limits.limited(router, route: "/revoke", limits.revoke, pages: gateway.pages))
    }

    // The MCP endpoints: Streamable HTTP at /mcp, and the legacy HTTP+SSE transport at /sse and /messages. All three
    // check the Origin and authenticate the caller the same way.
    func authentication(_ endpoint: String) -> MCPAuthenticationMiddleware {
        MCPAuthenticationMiddleware(
            origins: origins, authenticator: gateway.authenticator,
            challenge: MCPBearerChallenge(resourceMetadataURL: configuration.address.resourceMetadataURL(for: endpoint)))
    }
    StreamableHTTPEndpoint(server: gateway.mcp)
        .addRoutes(to: router.group("mcp").add(middleware: authentication("mcp")))
    LegacySSEEndpoint(server: gateway.mcp, publicURL: configuration.publicURL).addRoutes(
        sse: router.group("sse").add(middleware: authentication("sse")),
        messages: router.group("messages").add(middleware: authentication("sse")))

    var services: [any Service] = [
        SessionSweeper(sessions: gateway.mcp.sessions, interval: .seconds(60), logger: logger)
    ]
    services.append(SigningKeyRotation(ring: gateway.signingKeys, clock: gateway.clock, logger: logger))
    services.append(OutboundConnections(client: gateway.api))
    if let storage = gateway.authorizationServer?.storage {
        services.append(
            ExpirySweeper(
                maintenance: storage.maintenance, clock: gateway.clock, interval: .seconds(60),
                unusedClientLifetime: gateway.authorizationServer?.settings.unusedClientLifetime ?? 86_400,
                logger: logger))
    }
    return Application(
        router: router,
        server: .http1(
            configuration: .init(
                additionalChannelHandlers: [ConnectionCloseNotifier()],
                idleTimeout: .milliseconds(Int64(configuration.idleTimeout * 1000)))),
        configuration: .init(
            address: .hostname(configuration.host, port: configuration.port), serverName: "McpGateway"),
        services: services,
        logger: logger)
}
