import ArgumentParser
import AsyncHTTPClient
import Foundation
import Hummingbird
import JWTAuth
import Logging
import ServiceLifecycle
import ServiceSupport
import UnixSignals

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
            // Only the gateway's own authorization server keeps state on disk.
            var store: (any GatewayStore)?
            if case .authorizationServer(let server) = configuration.mode {
                store = SQLiteGatewayStore(database: try GatewayDatabase.open(path: server.databasePath))
            }
            let httpClient = OutboundHTTPClient.make()
            let gateway = try await Gateway(
                configuration: configuration,
                dependencies: GatewayDependencies(store: store, httpClient: httpClient),
                logger: logger)
            logger.info(
                "MCP endpoint \(configuration.resource) (AUTH_MODE=\(configuration.mode.name)); \(configuration.mode.signInSummary); tools call \(configuration.apiBaseURL)"
            )
            // SIGTERM stops accepting connections and lets requests finish, but a client may not let its own finish:
            // after ten seconds what is left is cancelled.
            var group = ServiceGroupConfiguration(
                services: [buildApplication(gateway: gateway, logger: logger)],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger)
            group.maximumGracefulShutdownDuration = .seconds(10)
            try await ServiceGroup(configuration: group).run()
            try await httpClient.shutdown()
        }
    }
}
