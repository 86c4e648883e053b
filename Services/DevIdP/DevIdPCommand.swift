import ArgumentParser
import Foundation
import Hummingbird
import JWTAuth
import Logging
import ServiceSupport

/// `DevIdP`: a local OpenID Connect provider that behaves like an Auth0 tenant. Development and tests only.
@main
struct DevIdPCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "DevIdP",
        abstract: "A local OpenID Connect provider that behaves like an Auth0 tenant. Not for production.",
        subcommands: [Serve.self, MintToken.self],
        defaultSubcommand: Serve.self)
}

extension DevIdPCommand {
    struct Serve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "serve", abstract: "Run the provider.")

        @Option(help: "Port to listen on (overrides DEVIDP_PORT, default 8790).") var port: Int?

        func run() async throws {
            await ServiceMain.run("DevIdP") {
                let settings = try Settings.load()
                try ServiceMain.bootstrapLogging(settings)
                let configuration = try DevIdPConfiguration.load(from: settings, port: port)
                let logger = Logger(label: "DevIdP")
                let signingKey = try await SigningKeyFile.loadOrCreate(at: configuration.signingKeyPath)
                logger.warning("DevIdP is a development identity provider: never use it in production")
                logger.info(
                    "Issuer \(configuration.issuer), signing key \(signingKey.keyID), clients \(configuration.clients.map(\.id)), users \(configuration.users.users.map(\.username))"
                )
                let app = try await buildApplication(
                    configuration: configuration, signingKey: signingKey, logger: logger)
                try await app.runService()
            }
        }
    }

    /// `DevIdP token --user bob --scope read:todos`: prints an access token signed with DevIdP's key, exactly as
    /// the password grant would issue it, without a running server (`make token` uses this).
    struct MintToken: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "token", abstract: "Print an access token for a demo user.")

        @Option(help: "Demo user.") var user = "alice"
        @Option(help: "Requested scopes (space-separated); limited to the user's permissions.")
        var scope = "openid profile email read:todos read:billing write:todos"
        @Option(help: "API audience (default: the first of AUTH0_AUDIENCE).") var audience: String?

        func run() async throws {
            await ServiceMain.run("DevIdP token") {
                let configuration = try DevIdPConfiguration.load(from: try Settings.load())
                guard let demoUser = configuration.users.user(named: user) else {
                    throw ValidationError(
                        "No demo user '\(user)'; choose one of \(configuration.users.users.map(\.username))")
                }
                let audience = audience ?? configuration.audiences[0]
                guard configuration.audiences.contains(audience) else {
                    throw ValidationError(
                        "Unknown audience '\(audience)'; AUTH0_AUDIENCE lists \(configuration.audiences)")
                }
                let signingKey = try await SigningKeyFile.loadOrCreate(at: configuration.signingKeyPath)
                let issuer = TokenIssuer(configuration: configuration, signingKey: signingKey, clock: SystemClock())
                let granted = issuer.grantedScope(requested: ScopeSet(spaceSeparated: scope), user: demoUser)
                print(
                    try issuer.accessToken(
                        user: demoUser, clientID: "devidp-cli", scope: granted, audience: audience,
                        grantType: "password"))
            }
        }
    }
}
