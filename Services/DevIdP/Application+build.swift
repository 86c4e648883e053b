import Hummingbird
import JWTAuth
import Logging
import ServiceSupport

/// Builds DevIdP: discovery, JWKS, `/authorize`, `/oauth/token`, `/oauth/revoke`, `/userinfo`, `/oidc/register`.
func buildApplication(
    configuration: DevIdPConfiguration, signingKey: RSASigningKey, clock: any WallClock = SystemClock(),
    random: any RandomSource = SystemRandomSource(), logger: Logger
) async throws -> some ApplicationProtocol {
    let router = Router(context: DevIdPRequestContext.self)
    router.add(middleware: AccessLogMiddleware())
    router.add(middleware: ErrorRenderingMiddleware())

    let clients = ClientRegistry(configuration.clients)
    let store = GrantStore(clock: clock, random: random)
    let issuer = TokenIssuer(configuration: configuration, signingKey: signingKey, clock: clock, random: random)
    let userinfoVerifier = JWTVerifier(
        configuration: .init(issuer: configuration.issuer, audiences: [configuration.userinfoAudience]),
        keys: KeySet([try await signingKey.verificationKey()]), clock: clock)

    router.get("health") { _, _ in HealthStatus(at: clock.now) }
    // Its signing key is loaded before it listens: ready as soon as it answers.
    Readiness.addRoute(to: router, checks: [ReadinessCheck("signing_key") { nil }])
    DiscoveryController(configuration: configuration, signingKey: signingKey).addRoutes(to: router)
    AuthorizeController(
        configuration: configuration, clients: clients, store: store, pages: try await PageRenderer.load()
    )
    .addRoutes(to: router)
    TokenController(configuration: configuration, clients: clients, store: store, issuer: issuer).addRoutes(to: router)
    UserInfoController(configuration: configuration, verifier: userinfoVerifier).addRoutes(to: router)
    RegistrationController(clients: clients, clock: clock, random: random).addRoutes(to: router)

    return Application(
        router: router,
        configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "DevIdP"),
        logger: logger)
}
