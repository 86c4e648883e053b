import ArgumentParser
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
            ServiceMain.bootstrapLogging(level: settings.string("LOG_LEVEL"))
            var configuration = try TodosAPIConfiguration.load(from: settings)
            if let host { configuration.host = host }
            if let port { configuration.port = port }
            let logger = Logger(label: "TodosAPI")

            let database = try TodoDatabase.open(path: configuration.databasePath)
            let keys = JWKSCache(configuration: configuration.jwksConfiguration, logger: Logger(label: "TodosAPI.JWKS"))
            Task { await keys.refresh() }  // warm the cache; an IdP that starts later is fetched on first use
            let app = buildApplication(
                configuration: configuration,
                dependencies: TodosAPIDependencies(keys: keys, repository: SQLiteTodoRepository(database: database)),
                logger: logger)
            logger.info(
                "TodosAPI accepts tokens from \(configuration.issuer) for \(configuration.audiences.sorted())",
                metadata: ["jwks": "\(configuration.jwksSource)"])
            try await app.runService()
        }
    }
}
