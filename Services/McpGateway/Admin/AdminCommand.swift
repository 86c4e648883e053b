import ArgumentParser
import Foundation
import JWTAuth
import Logging
import ServiceSupport

/// `McpGateway admin …`: an operator's view of the gateway's database, with the same settings as the server (SQLite
/// or PostgreSQL), safe while gateways run.
///
/// Results go to standard output (a table, or JSON with `--json`), logs and errors to standard error. Exit codes:
/// 0 done, 1 failed (the message says why), 3 not found (`client`, `delete-client`, `revoke --grant`), 64 bad usage.
struct Admin: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "admin",
        abstract: "Inspect and maintain the gateway's database (clients, grants, tokens).",
        subcommands: [
            Clients.self, ShowClient.self, AddClient.self, DeleteClient.self, Grants.self, Revoke.self, Purge.self,
            Counts.self, Reseal.self,
        ])

    /// Exit code of a lookup that found nothing.
    static let notFound = ExitCode(3)
}

/// The settings and the opened database, for one admin command.
struct AdminContext {
    let configuration: GatewayConfiguration
    let settings: AuthorizationServerSettings
    let database: OpenedDatabase
    var storage: GatewayStorage { database.storage }
    /// What an operator ends is recorded as the server records it.
    let audit = AuditLog()

    /// Opens the database of `AUTH_MODE=gateway` and runs `body`; other modes keep no database.
    static func run(_ body: (AdminContext) async throws -> Void) async throws {
        let settings = try Settings.load()
        try ServiceMain.bootstrapLogging(settings, output: .standardError)
        let configuration = try GatewayConfiguration.load(from: settings)
        guard case .authorizationServer(let server) = configuration.mode else {
            FileHandle.standardError.write(
                Data(
                    "AUTH_MODE=\(configuration.mode.name) keeps no clients or grants (only the signing keys of downstream tokens, which need no administering).\n"
                        .utf8))
            throw ExitCode.failure
        }
        let database = try await OpenedDatabase.open(
            configuration.database, timeout: configuration.timeouts.database, logger: Logger(label: "McpGateway.admin"),
            waitForServer: .seconds(5))
        do {
            try await body(AdminContext(configuration: configuration, settings: server, database: database))
        } catch {
            await database.close()
            throw error
        }
        await database.close()
    }
}
