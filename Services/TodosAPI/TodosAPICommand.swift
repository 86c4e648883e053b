import ArgumentParser
import GRDB
import Hummingbird
import JWTAuth
import Logging
import ServiceSupport

/// `TodosAPI`: the protected Todos API. Settings come from the environment and `.dev.vars`; see
/// `docs/configuration.md`.
@main
struct TodosAPICommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "TodosAPI",
        abstract: "The protected Todos API: verifies RS256 access tokens and enforces scopes.")

    @Option(help: "Address to listen on (overrides HOST).") var host: String?
    @Option(help: "Port to listen on (overrides PORT).") var port: Int?

    func run() async throws {
        await ServiceMain.run("TodosAPI") {
            let settings = try Settings.load()
            try ServiceMain.bootstrapLogging(settings)
            var configuration = try TodosAPIConfiguration.load(from: settings)
            if configuration.metricsEnabled { ServiceMetrics.bootstrap() }
            if let host { configuration.host = host }
            if let port { configuration.port = port }
            let logger = Logger(label: "TodosAPI")

            let database = try TodoDatabase.open(
                path: configuration.databasePath, legacyOwnerIssuer: configuration.legacyOwnerIssuer)
            // Warm the caches; a provider that starts later is fetched on first use.
            let keys = configuration.tokens.map {
                JWKSCache(
                    configuration: configuration.jwksConfiguration($0.jwksSource),
                    logger: Logger(label: "TodosAPI.JWKS"))
            }
            let accessKeys = configuration.access.map {
                JWKSCache(
                    configuration: configuration.jwksConfiguration(
                        .url(CloudflareAccess.certsURL(teamDomain: $0.teamDomain))),
                    logger: Logger(label: "TodosAPI.AccessKeys"))
            }
            let gatewayKeys = configuration.gateway.map {
                JWKSCache(
                    configuration: configuration.jwksConfiguration($0.jwksSource),
                    logger: Logger(label: "TodosAPI.GatewayKeys"))
            }
            for cache in [keys, accessKeys, gatewayKeys].compactMap({ $0 }) { Task { await cache.refresh() } }
            let app = buildApplication(
                configuration: configuration,
                dependencies: TodosAPIDependencies(
                    keys: keys ?? KeySet([]), accessKeys: accessKeys, gatewayKeys: gatewayKeys,
                    repository: SQLiteTodoRepository(database: database),
                    readiness: [
                        ReadinessCheck("database") {
                            do {
                                try await database.read { db in try db.execute(sql: "SELECT 1") }
                                return nil
                            } catch {
                                logger.warning(
                                    "Readiness: the database does not answer", metadata: ["error": "\(error)"])
                                return "the database does not answer"
                            }
                        }
                    ]
                        + [("signing_keys", keys), ("access_keys", accessKeys), ("gateway_keys", gatewayKeys)]
                        .compactMap { name, cache in cache.map { (name, $0) } }
                        .map { name, cache in
                            ReadinessCheck(name) {
                                // An issuer that started after TodosAPI (the gateway, in a compose file) is asked again.
                                if cache.currentKeys == nil { await cache.refresh() }
                                return cache.currentKeys == nil ? "no signing keys fetched yet" : nil
                            }
                        }),
                logger: logger)
            if let tokens = configuration.tokens {
                logger.info(
                    "TodosAPI accepts tokens from \(tokens.issuer) for \(tokens.audiences.sorted())",
                    metadata: ["jwks": "\(tokens.jwksSource)"])
            }
            if let gateway = configuration.gateway {
                logger.info(
                    "TodosAPI accepts the MCP gateway's tokens from \(gateway.issuer) for \(gateway.audiences.sorted())",
                    metadata: ["jwks": "\(gateway.jwksSource)"])
            }
            if let access = configuration.access {
                logger.info(
                    "TodosAPI accepts Cloudflare Access assertions of \(access.teamDomain) for \(access.audiences.sorted()), granting \(access.scopes)"
                )
            }
            try await app.runService()
        }
    }
}
