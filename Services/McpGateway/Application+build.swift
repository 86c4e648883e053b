import Hummingbird
import JWTAuth
import Logging
import ServiceSupport

/// Builds the gateway's application from its parts (``Gateway``): what every request goes through, then each route
/// family in the order a client meets them, then the work beside the server. Nothing here touches the outside world:
/// that is the parts' start-up, which runs before the server listens.
func buildApplication(gateway: Gateway, logger: Logger) -> some ApplicationProtocol {
    let configuration = gateway.configuration
    let router = Router(context: GatewayRequestContext.self)

    // Every request: an access log line, CORS, errors as OAuth or JSON-RPC bodies, or as pages for a browser.
    router.add(middleware: AccessLogMiddleware())
    router.add(middleware: CORSMiddleware(origins: gateway.origins))
    router.add(middleware: ErrorRenderingMiddleware())
    router.add(middleware: BrowserErrorPages(pages: gateway.pages))

    // For the operator: liveness, readiness, metrics.
    router.get("health") { _, _ in HealthStatus(at: gateway.clock.now) }
    Readiness.addRoute(to: router, checks: gateway.readiness)
    if configuration.metricsEnabled { ServiceMetrics.addRoute(to: router, token: configuration.metricsToken) }

    // What a person or a client finds first: the home page, where to sign in, the keys of downstream tokens.
    HomeController(configuration: configuration, pages: gateway.pages).addRoutes(to: router)
    gateway.protectedResourceMetadata?.addRoutes(to: router)
    JWKSController(keys: gateway.signingKeys).addRoutes(to: router)

    // AUTH_MODE=gateway: registration, authorization and consent, the provider's callback, tokens, revocation.
    gateway.authorizationServer?.addRoutes(to: router, limits: configuration.rateLimits, pages: gateway.pages)

    // The MCP endpoints, in every mode.
    MCPEndpoints(
        server: gateway.mcp, authenticator: gateway.authenticator, origins: gateway.origins,
        address: configuration.address, scopes: gateway.scopes
    ).addRoutes(to: router)

    var application = Application(
        router: router,
        server: .http1(
            configuration: .init(
                additionalChannelHandlers: [ConnectionCloseNotifier()],
                idleTimeout: .milliseconds(Int64(configuration.idleTimeout * 1000)))),
        configuration: .init(
            address: .hostname(configuration.host, port: configuration.port), serverName: "McpGateway"),
        services: gateway.services(logger: logger),
        logger: logger)
    application.beforeServerStarts { try await gateway.startUp(logger: logger) }
    return application
}
