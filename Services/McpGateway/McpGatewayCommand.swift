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
            + "on their behalf.",
        subcommands: [Serve.self, Admin.self],
        defaultSubcommand: Serve.self)
}

/// `McpGateway [serve]`: run the gateway.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "serve", abstract: "Run the gateway (the default).")

    @Option(help: "Address to listen on (overrides HOST).") var host: String?
    @Option(help: "Port to listen on (overrides PORT).") var port: Int?

    func run() async throws {
        await ServiceMain.run("McpGateway") {
            let settings = try Settings.load()
            try ServiceMain.bootstrapLogging(settings)
            var configuration = try GatewayConfiguration.load(from: settings)
            if let host { configuration.host = host }
            if let port { configuration.port = port }
            if configuration.metricsEnabled { ServiceMetrics.bootstrap() }
            let logger = Logger(label: "McpGateway")
            // Grants (AUTH_MODE=gateway) and, in every mode, the keys downstream tokens are signed with.
            let database: OpenedDatabase? = try await OpenedDatabase.open(
                configuration.database, timeout: configuration.timeouts.database, logger: logger)
            let httpClient = OutboundHTTPClient.make()
            do {
                let gateway = try await Gateway.load(
                    configuration: configuration,
                    dependencies: GatewayDependencies(storage: database?.storage, httpClient: httpClient),
                    logger: logger)
                logger.info(
                    "MCP endpoint \(configuration.address.resource) (AUTH_MODE=\(configuration.mode.name)); \(configuration.mode.signInSummary); tools call \(configuration.apiBaseURL)"
                )
                // SIGTERM stops accepting connections and lets requests finish, but a client may not let its own
                // finish: after ten seconds what is left is cancelled.
                var group = ServiceGroupConfiguration(
                    services: [buildApplication(gateway: gateway, logger: logger)] + (database?.services ?? []),
                    gracefulShutdownSignals: [.sigterm, .sigint],
                    logger: logger)
                group.maximumGracefulShutdownDuration = .seconds(10)
                try await ServiceGroup(configuration: group).run()
            } catch {
                // A gateway that could not start (a start-up check refused it) still shuts its clients down.
                try? await httpClient.shutdown()
                await database?.close()
                throw error
            }
            try await httpClient.shutdown()
            await database?.close()
        }
    }
}
