import Hummingbird
import JWTAuth
import Logging
import ServiceSupport

/// What the application needs from outside, injectable for tests.
struct TodosAPIDependencies: Sendable {
    /// The issuer's signing keys: a ``JWKSCache`` in production, a fixed ``KeySet`` in tests. Unused without an issuer.
    var keys: any VerificationKeyProvider
    /// Cloudflare Access's signing keys; unused unless Access is configured.
    var accessKeys: (any VerificationKeyProvider)? = nil
    /// The MCP gateway's signing keys; unused unless `GATEWAY_ISSUER` is set.
    var gatewayKeys: (any VerificationKeyProvider)? = nil
    var repository: any TodoRepository
    var clock: any WallClock = SystemClock()
    /// What `/api/ready` checks: the database, the signing keys.
    var readiness: [ReadinessCheck] = []
}

/// Builds the TodosAPI application: routes, authentication, error rendering and access logs.
func buildApplication(
    configuration: TodosAPIConfiguration, dependencies: TodosAPIDependencies, logger: Logger
) -> some ApplicationProtocol {
    let router = Router(context: TodosRequestContext.self)
    router.add(middleware: AccessLogMiddleware())
    router.add(middleware: ErrorRenderingMiddleware())

    router.get("api/health") { _, _ in HealthStatus(at: dependencies.clock.now) }
    router.refuseOtherMethods(on: "api/health", allowed: [.get])
    Readiness.addRoute(to: router, path: "api/ready", checks: dependencies.readiness)
    if configuration.metricsEnabled { ServiceMetrics.addRoute(to: router, token: configuration.metricsToken) }

    // Each trusted issuer with its own keys, audiences and token types; a token of any other issuer is refused.
    var verifiers: [(settings: TodosAPIConfiguration.TokenSettings, keys: any VerificationKeyProvider)] = []
    if let provider = configuration.tokens { verifiers.append((provider, dependencies.keys)) }
    if let gateway = configuration.gateway {
        verifiers.append((gateway, dependencies.gatewayKeys ?? dependencies.keys))
    }
    let bearer =
        verifiers.isEmpty
        ? nil
        : TrustedIssuers(
            verifiers.map {
                JWTVerifier(
                    configuration: configuration.verifierConfiguration($0.settings), keys: $0.keys,
                    clock: dependencies.clock)
            })
    let access = configuration.access.map { settings in
        (
            verifier: JWTVerifier(
                configuration: CloudflareAccess.verifierConfiguration(
                    teamDomain: settings.teamDomain, audiences: settings.audiences, leeway: configuration.leeway),
                keys: dependencies.accessKeys ?? dependencies.keys, clock: dependencies.clock),
            scopes: settings.scopes
        )
    }
    let api = router.group("api").add(
        middleware: CallerAuthMiddleware(bearer: bearer, access: access, gatewayIssuer: configuration.gateway?.issuer))
    MeController().addRoutes(to: api)
    TodosController(repository: dependencies.repository).addRoutes(to: api)
    BillingController().addRoutes(to: api)
    // Every other path under /api/ needs a valid token too, then answers a JSON 404.
    for method in [HTTPRequest.Method.get, .post, .put, .patch, .delete] {
        api.on("**", method: method) { _, _ -> Response in throw ErrorResponse.notFound() }
    }

    return Application(
        router: router,
        configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "TodosAPI"),
        logger: logger)
}
