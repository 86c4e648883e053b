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
    /// Where tokens, codes, ids, nonces and `jti`s come from.
    var random: any RandomSource = SystemRandomSource()
    /// Where security events are recorded (logger `McpGateway.audit`).
    var audit = AuditLog()
}

/// The gateway's parts, built once from its configuration, shared by the routes. Building them touches nothing outside
/// the process; what does (loading the signing keys, checking the encryption keys against the database, fetching an
/// issuer's keys) is ``startUp(logger:)``, which runs before the server listens.
struct Gateway: Sendable {
    let configuration: GatewayConfiguration
    let clock: any WallClock
    let pages: PageRenderer
    let origins: OriginPolicy
    /// The MCP server both transports share: tools, sessions, limits.
    let mcp: MCPServer
    /// The APIs the tools call, each over kept-alive connections closed when the gateway stops.
    let apis: [API]
    /// The scopes the tools need, which the authorization server offers and challenges name.
    let scopes: GatewayScopes
    /// Reloads the documents `API_OPENAPI` names on SIGHUP and when their files change; none for TodosAPI's own.
    let reloader: ToolReloader?
    let authenticator: any MCPAuthenticator
    /// Present in `AUTH_MODE=gateway` only.
    let authorizationServer: AuthorizationServer?
    /// Where clients learn which authorization server to use; none behind Cloudflare Access.
    let protectedResourceMetadata: ProtectedResourceMetadataController?
    /// The keys downstream tokens are signed with (``DownstreamTokenMinter``).
    let signingKeys: SigningKeyRing
    /// The keys of the issuer whose tokens `/mcp` accepts (`AUTH_MODE=external` and `access`).
    let issuerKeys: JWKSCache?
    /// What `/ready` checks: the database, the signing keys, the issuer's keys (external and access modes).
    let readiness: [ReadinessCheck]

    /// Loads the page templates and the APIs' OpenAPI documents (fetching those given by URL), then builds the parts.
    static func load(
        configuration: GatewayConfiguration, dependencies: GatewayDependencies, logger: Logger
    ) async throws -> Gateway {
        let catalog = try await APICatalog.load(
            for: configuration, httpClient: dependencies.httpClient, fetcher: dependencies.documentFetcher,
            connectTimeout: dependencies.apiConnectTimeout, logger: logger)
        return try Gateway(
            configuration: configuration, dependencies: dependencies, pages: try await PageRenderer.load(),
            catalog: catalog, logger: logger)
    }

    init(
        configuration: GatewayConfiguration, dependencies: GatewayDependencies, pages: PageRenderer,
        catalog: APICatalog, logger: Logger
    ) throws {
        guard var storage = dependencies.storage else {
            throw ConfigurationError(
                variable: "GATEWAY_DATABASE", problem: "was not opened", example: ".data/gateway.sqlite")
        }
        self.configuration = configuration
        self.clock = dependencies.clock
        self.pages = pages
        self.origins = OriginPolicy(allowed: configuration.allowedOrigins, address: configuration.address)
        let timeouts = configuration.timeouts
        let fetcher =
            dependencies.documentFetcher
            ?? HTTPDocumentFetcher(client: dependencies.httpClient, timeout: TimeAmount(timeouts.upstream))
        let cipher = TokenCipher(
            secret: configuration.encryptionSecret, previousSecrets: configuration.previousEncryptionSecrets)
        // The tokens the gateway signs for TodosAPI: for every call when DOWNSTREAM_TOKENS=mint, and for grants that
        // hold no provider token whatever the setting.
        let ring = SigningKeyRing(
            store: storage.signingKeys, cipher: cipher,
            schedule: .init(
                rotation: configuration.downstream.keyRotation,
                retention: configuration.downstream.lifetime + Self.verifierLeeway),
            logger: logger)
        self.signingKeys = ring
        let minter = DownstreamTokenMinter(
            issuer: configuration.address.issuer, subjectIssuer: configuration.mode.subjectIssuer,
            audience: configuration.downstream.audience,
            lifetime: configuration.downstream.lifetime, keys: ring, clock: dependencies.clock,
            random: dependencies.random)
        let address = configuration.address
        let scopes = catalog.scopes
        self.scopes = scopes
        switch configuration.mode {
        case .authorizationServer(let settings):
            // Scopes the provider is not asked for: every user gets them, so they must be scopes of the tools.
            if let granted = settings.upstream.grantedScopes, !scopes.api.isSuperset(of: granted) {
                throw ConfigurationError(
                    variable: "GRANTED_SCOPES",
                    problem: "must list scopes of the tools (\(scopes.api)), not \(granted.subtracting(scopes.api))",
                    example: scopes.api.sorted.prefix(2).joined(separator: " "))
            }
            storage.accessTokens = AccessTokenCache(wrapping: storage.accessTokens, feed: storage.changes)
            // On PostgreSQL, a client's lookup at /token is a round trip, and every write to a client is announced to
            // every instance (the admin commands' too). On SQLite the lookup is a local read, and `McpGateway admin`
            // writes the file from another process, unannounced.
            if storage.backend.isShared {
                storage.clients = ClientCache(wrapping: storage.clients, feed: storage.changes)
            }
            let server = Self.authorizationServer(
                settings, configuration: configuration, scopes: scopes, storage: storage, cipher: cipher,
                fetcher: fetcher, dependencies: dependencies, logger: logger)
            self.authorizationServer = server
            self.authenticator = GatewayTokenAuthenticator(
                address: address, accessTokens: storage.accessTokens, tokens: server.upstreamTokens,
                downstream: GrantDownstreamCredentials(
                    kind: configuration.downstream.kind, minter: minter,
                    exchanges: configuration.downstream.kind == .exchange
                        ? TokenExchanges(
                            provider: server.upstream, grants: storage.grants,
                            audience: configuration.downstream.audience, clock: dependencies.clock, logger: logger,
                            wait: timeouts.upstream, audit: dependencies.audit) : nil),
                dpop: server.dpop, clock: dependencies.clock)
            self.protectedResourceMetadata = ProtectedResourceMetadataController(
                address: address, authorizationServers: [address.issuer], scopes: scopes, dpopBoundTokens: true)
            self.issuerKeys = nil
        case .externalAuthorizationServer(let settings):
            let keys = JWKSCache(
                configuration: .init(source: settings.jwksSource), fetcher: fetcher, clock: dependencies.clock,
                logger: logger)
            self.authenticator = ExternalTokenAuthenticator(
                verifier: JWTVerifier(
                    configuration: .init(issuer: settings.issuer, audiences: settings.audiences), keys: keys,
                    clock: dependencies.clock),
                minter: minter, claimNames: configuration.identityClaims)
            self.protectedResourceMetadata = ProtectedResourceMetadataController(
                address: address, authorizationServers: [settings.issuer], scopes: scopes, dpopBoundTokens: false)
            (self.authorizationServer, self.issuerKeys) = (nil, keys)
        case .cloudflareAccess(var settings):
            // Without ACCESS_SCOPES, Access users may call every tool its policy lets through.
            settings.scopes = settings.scopes ?? scopes.api
            let keys = JWKSCache(
                configuration: .init(source: .url(settings.certsURL)), fetcher: fetcher, clock: dependencies.clock,
                logger: logger)
            self.authenticator = AccessAssertionAuthenticator(
                settings: settings,
                verifier: JWTVerifier(
                    configuration: CloudflareAccess.verifierConfiguration(
                        teamDomain: settings.teamDomain, audiences: settings.audiences),
                    keys: keys, clock: dependencies.clock),
                minter: minter, claimNames: configuration.identityClaims)
            (self.authorizationServer, self.protectedResourceMetadata, self.issuerKeys) = (nil, nil, keys)
        }
        self.readiness = Self.readinessChecks(
            database: storage.maintenance, signingKeys: ring, issuerKeys: issuerKeys, logger: logger)
        // The provider's own token is for TodosAPI's audience, with every scope the user granted: it goes to the API
        // at API_BASE_URL and nowhere else.
        if configuration.downstream.kind == .upstream,
            let other = catalog.apis.first(where: {
                ($0.audience != nil && $0.audience != configuration.downstream.audience)
                    || !APICatalog.sameOrigin($0.baseURL, configuration.apiBaseURL)
            })
        {
            throw ConfigurationError(
                variable: "DOWNSTREAM_TOKENS",
                problem: "must be mint or exchange with several APIs: the provider's token is for"
                    + " \(configuration.downstream.audience) at API_BASE_URL only, and \(other.name) is at \(other.baseURL)",
                example: "mint")
        }
        self.apis = catalog.apis
        let handWritten: [any GatewayTool] = [WhoAmITool()]
        let tools = ToolBox.combining(
            handWritten: handWritten, generated: catalog.tools, policy: configuration.toolPolicy,
            audit: dependencies.audit)
        try configuration.toolPolicy?.check(toolNames: Set(tools.tools.map(\.name)))
        // Only documents API_OPENAPI names can change; TodosAPI's bundled one cannot.
        let reloadable = configuration.apiOpenAPI != nil
        // Behind Cloudflare Access there is no authorization server to step up with: a missing scope is a tool error.
        let stepUp: Bool =
            switch configuration.mode {
            case .cloudflareAccess: false
            default: true
            }
        var server = ServerDescription(toolsCanChange: reloadable)
        if let instructions = catalog.serverInstructions { server.instructions = instructions }
        self.mcp = MCPServer(
            tools: tools, limits: configuration.mcp, sessionSecret: configuration.sessionSecret, stepUp: stepUp,
            resourceMetadataURL: address.resourceMetadataURL, server: server, clock: dependencies.clock, logger: logger)
        let (httpClient, documentFetcher, connectTimeout) = (
            dependencies.httpClient, dependencies.documentFetcher, dependencies.apiConnectTimeout
        )
        self.reloader =
            reloadable
            ? ToolReloader(
                catalog: catalog,
                load: { [configuration] in
                    try await APICatalog.load(
                        for: configuration, httpClient: httpClient, fetcher: documentFetcher,
                        connectTimeout: connectTimeout,
                        logger: logger)
                }, server: mcp, handWritten: handWritten, policy: configuration.toolPolicy, audit: dependencies.audit,
                watchInterval: configuration.apiOpenAPIWatch > 0 ? .milliseconds(Int64(configuration.apiOpenAPIWatch * 1000)) : nil,
                logger: logger) : nil
    }

    /// Before the server listens: the signing keys are loaded (or made), the authorization server's start-up checks
    /// pass, and the issuer's keys are being fetched. A failure here stops the gateway with what to fix.
    func startUp(logger: Logger) async throws {
        try await signingKeys.refresh(now: clock.now)
        try await authorizationServer?.startUp(logger: logger)
        if let issuerKeys { Task { await issuerKeys.refresh() } }
    }

    /// The work that runs beside the server, and stops with it.
    func services(logger: Logger) -> [any Service] {
        [
            SessionSweeper(sessions: mcp.sessions, interval: .seconds(60), logger: logger),
            SigningKeyRotation(ring: signingKeys, clock: clock, logger: logger),
        ] + apis + (reloader.map { [$0] } ?? []) + (authorizationServer?.services(logger: logger) ?? [])
    }
}

extension Gateway {
    /// The clock skew verifiers allow on `exp`: a replaced signing key stays published this much longer than its last
    /// token's lifetime.
    static let verifierLeeway: TimeInterval = 300

    /// `AUTH_MODE=gateway`: the authorization server toward MCP clients and its sign-in with the provider.
    private static func authorizationServer(
        _ settings: AuthorizationServerSettings, configuration: GatewayConfiguration, scopes: GatewayScopes,
        storage: GatewayStorage, cipher: TokenCipher, fetcher: any DocumentFetching, dependencies: GatewayDependencies,
        logger: Logger
    ) -> AuthorizationServer {
        let (address, timeouts, clock) = (configuration.address, configuration.timeouts, dependencies.clock)
        let upstream = UpstreamProvider(
            configuration: settings.upstream, callbackURL: address.callbackURL,
            http: dependencies.upstreamHTTP ?? AsyncUpstreamHTTP(client: dependencies.httpClient), fetcher: fetcher,
            clock: clock, claimNames: configuration.identityClaims,
            timeouts: (timeouts.upstream, timeouts.upstreamRefresh), logger: logger)
        let upstreamTokens = UpstreamTokenService(
            grants: storage.grants, upstreamTokens: storage.upstreamTokens, refresher: upstream, cipher: cipher,
            clock: clock, logger: logger, sharedDatabase: storage.backend.isShared,
            timeouts: .init(wait: timeouts.upstream, refresh: timeouts.upstreamRefresh, database: timeouts.database),
            audit: dependencies.audit)
        let documents = settings.clientMetadataDocuments
        let clients = ClientDirectory(
            store: storage.clients,
            documents: documents.enabled
                ? ClientMetadataDocuments(
                    fetcher: HTTPClientMetadataFetcher(
                        policy: PublicAddressPolicy(allowPrivate: documents.allowPrivateAddresses),
                        resolver: dependencies.hostResolver, timeout: timeouts.clientMetadata),
                    store: storage.clients, scopes: scopes, clock: clock,
                    allowLoopbackHTTP: documents.allowPrivateAddresses, logger: logger)
                : nil)
        let oneTime = OneTimeAssertion(usedAssertions: storage.usedAssertions, clock: clock)
        let identityAssertions: JWTBearerGrant? =
            settings.identityAssertionIssuers.isEmpty
            ? nil
            : JWTBearerGrant(
                issuers: JWTBearerGrant.verifiers(
                    issuers: settings.identityAssertionIssuers, audience: address.issuer, fetcher: fetcher,
                    clock: clock, logger: logger),
                oneTime: oneTime,
                issuing: GrantWithoutCode(
                    grants: storage.grants, accessTokenLifetime: settings.accessTokenLifetime,
                    resource: address.resource, random: dependencies.random),
                resources: address.resourceNames, signInIssuer: settings.upstream.issuer,
                claimNames: configuration.identityClaims)
        return AuthorizationServer(
            settings: settings, address: address, scopes: scopes, storage: storage, clients: clients, upstream: upstream,
            cipher: cipher, cookies: CookieSigner(secret: settings.cookieSecret, secure: address.isHTTPS),
            upstreamTokens: upstreamTokens,
            clientAuthenticator: ClientAuthenticator(
                clients: clients,
                assertions: ClientAssertions(
                    clients: clients, keys: ClientKeys(fetcher: fetcher, clock: clock, logger: logger),
                    oneTime: oneTime, audiences: [address.issuer, address.publicURL + "/token"])),
            identityAssertions: identityAssertions,
            dpop: DPoPChecker(
                nonces: DPoPNonces(secret: configuration.encryptionSecret), usedProofs: storage.usedAssertions,
                clock: clock, nonceRequired: settings.dpopNonceRequired),
            clock: clock, random: dependencies.random, audit: dependencies.audit,
            reuseInterval: (timeouts.requiredReuseInterval, timeouts.upstreamReuseInterval))
    }

    /// Ready while the database answers and the signing keys are loaded, and, in the modes that accept another
    /// issuer's tokens, once its keys have been fetched. The detail of a failure (addresses, server messages) goes to
    /// the log, not to whoever asks `/ready`.
    private static func readinessChecks(
        database: any StoreMaintenance, signingKeys: SigningKeyRing, issuerKeys: JWKSCache?, logger: Logger
    ) -> [ReadinessCheck] {
        var checks = [
            ReadinessCheck("database") {
                do {
                    try await database.ping()
                    return nil
                } catch {
                    logger.warning("Readiness: the database does not answer", metadata: ["error": "\(error)"])
                    return "the database does not answer"
                }
            }
        ]
        if let issuerKeys {
            // Until the keys are fetched every request would be refused; a provider that is down is asked again.
            checks.append(
                ReadinessCheck("signing_keys") {
                    if issuerKeys.currentKeys != nil { return nil }
                    await issuerKeys.refresh()
                    return issuerKeys.currentKeys == nil ? "the issuer's signing keys could not be fetched yet" : nil
                })
        }
        checks.append(
            ReadinessCheck("downstream_signing_keys") {
                signingKeys.keys == nil ? "the keys downstream tokens are signed with are not loaded" : nil
            })
        return checks
    }
}
