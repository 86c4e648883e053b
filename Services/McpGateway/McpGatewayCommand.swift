import ArgumentParser
import AsyncHTTPClient
import Foundation
import Hummingbird
import JWTAuth
import Logging
import ServiceSupport

/// `McpGateway`: the remote MCP server and OAuth 2.1 authorization server for MCP clients.
@main
struct McpGatewayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "McpGateway",
        abstract: "A remote MCP server that signs users in through an OpenID Connect provider and calls the Todos API "
            + "on their behalf.")

    @Option(help: "Address to listen on (overrides HOST).") var host: String?
    @Option(help: "Port to listen on (overrides PORT).") var port: Int?

    func run() async throws {
        await ServiceMain.run("McpGateway") {
            let settings = try Settings.load()
            ServiceMain.bootstrapLogging(level: settings.string("LOG_LEVEL"))
            var configuration = try GatewayConfiguration.load(from: settings)
            if let host { configuration.host = host }
            if let port { configuration.port = port }
            let logger = Logger(label: "McpGateway")
            let database = try GatewayDatabase.open(path: configuration.databasePath)
            let httpClient = OutboundHTTPClient.make()
            let gateway = try await Gateway(
                configuration: configuration,
                dependencies: GatewayDependencies(
                    store: SQLiteGatewayStore(database: database), httpClient: httpClient),
                logger: logger)
            logger.info(
                "MCP endpoint \(configuration.resource); users sign in with \(configuration.upstream.issuer); tools call \(configuration.apiBaseURL)"
            )
            try await buildApplication(gateway: gateway, logger: logger).runService()
            try await httpClient.shutdown()
        }
    }
}
