import AsyncHTTPClient
import Hummingbird
import JWTAuth
import Logging
import ServiceSupport

/// What the gateway needs from outside, injectable for tests.
struct GatewayDependencies: Sendable {
    var store: any GatewayStore
    var clock: any WallClock = SystemClock()
    var httpClient: HTTPClient = .shared
    /// Fetches the provider's discovery document and JWKS; by default over HTTP with `httpClient`.
    var documentFetcher: (any DocumentFetching)?
    /// Calls the provider's token and userinfo endpoints; by default over HTTP with `httpClient`.
    var upstreamHTTP: (any UpstreamHTTP)?
}

/// The gateway's parts, built once, shared by the routes.
struct Gateway: Sendable {
    let configuration: GatewayConfiguration
    let store: any GatewayStore
    let clock: any WallClock
    let upstream: UpstreamProvider
    let cipher: TokenCipher
    let cookies: CookieSigner
    let pages: PageRenderer
    let sessions: SessionRegistry
    let upstreamTokens: UpstreamTokenService
    let tools: TodoTools

    init(configuration: GatewayConfiguration, dependencies: GatewayDependencies, logger: Logger) async throws {
        self.configuration = configuration
        let store = AccessTokenCache(wrapping: dependencies.store)
        self.store = store
        self.clock = dependencies.clock
        self.cipher = TokenCipher(
            secret: configuration.encryptionSecret, previousSecrets: configuration.previousEncryptionSecrets)
        self.cookies = CookieSigner(secret: configuration.cookieSecret, secure: configuration.isHTTPS)
        self.pages = try await PageRenderer.load()
        self.upstream = UpstreamProvider(
            configuration: configuration.upstream, callbackURL: configuration.callbackURL,
            http: dependencies.upstreamHTTP ?? AsyncUpstreamHTTP(client: dependencies.httpClient),
            fetcher: dependencies.documentFetcher ?? HTTPDocumentFetcher(client: dependencies.httpClient),
            clock: dependencies.clock, logger: logger)
        self.upstreamTokens = UpstreamTokenService(
            store: store, refresher: upstream, cipher: cipher, clock: dependencies.clock, logger: logger)
        let tools = TodoTools(
            store: store, tokens: upstreamTokens,
            api: TodosAPIClient(baseURL: configuration.apiBaseURL, client: dependencies.httpClient))
        self.tools = tools
        self.sessions = SessionRegistry(
            factory: MCPServerFactory(logger: logger), limits: configuration.sessions,
            clock: dependencies.clock, logger: logger)
    }

    var signIn: UpstreamSignIn {
        UpstreamSignIn(
            configuration: configuration, store: store, upstream: upstream, cipher: cipher, cookies: cookies,
            clock: clock)
    }
}

/// Builds the gateway: OAuth authorization server, upstream relying party, consent, MCP endpoint, expiry sweeper.
func buildApplication(gateway: Gateway, logger: Logger) -> some ApplicationProtocol {
    let configuration = gateway.configuration
    let router = Router(context: GatewayRequestContext.self)
    router.add(middleware: AccessLogMiddleware())
    router.add(middleware: ErrorRenderingMiddleware())

    router.get("health") { _, _ in HealthStatus(at: gateway.clock.now) }
    HomeController(configuration: configuration, pages: gateway.pages).addRoutes(to: router)
    MetadataController(configuration: configuration).addRoutes(to: router)
    RegistrationController(store: gateway.store, clock: gateway.clock).addRoutes(to: router)
    AuthorizeController(
        configuration: configuration, store: gateway.store, signIn: gateway.signIn, cookies: gateway.cookies,
        pages: gateway.pages, clock: gateway.clock
    ).addRoutes(to: router)
    CallbackController(
        configuration: configuration, store: gateway.store, upstream: gateway.upstream, cipher: gateway.cipher,
        cookies: gateway.cookies, pages: gateway.pages, clock: gateway.clock
    ).addRoutes(to: router)
    TokenController(configuration: configuration, store: gateway.store, clock: gateway.clock).addRoutes(to: router)
    RevocationController(store: gateway.store, clock: gateway.clock).addRoutes(to: router)

    let mcp = router.group("mcp").add(
        middleware: MCPAuthenticationMiddleware(
            configuration: configuration, origins: OriginPolicy(configuration: configuration), store: gateway.store,
            clock: gateway.clock))
    MCPEndpoint(
        configuration: configuration, sessions: gateway.sessions, fastPath: ToolRequestFastPath(tools: gateway.tools)
    ).addRoutes(to: mcp)

    let sweeper = ExpirySweeper(
        store: gateway.store, sessions: gateway.sessions, clock: gateway.clock, interval: .seconds(60), logger: logger)
    return Application(
        router: router,
        configuration: .init(
            address: .hostname(configuration.host, port: configuration.port), serverName: "McpGateway"),
        services: [sweeper],
        logger: logger)
}
