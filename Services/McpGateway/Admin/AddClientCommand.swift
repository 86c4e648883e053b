import ArgumentParser
import Foundation
import JWTAuth
import Logging
import ServiceSupport

extension Admin {
    /// `admin add-client`: registers a client that no one can register through `/register`: a machine client
    /// (`client_credentials`) or a client of enterprise identity assertions (`jwt-bearer`), authenticated by a secret
    /// or by `private_key_jwt`.
    struct AddClient: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "add-client",
            abstract: "Register a machine client (client credentials) or a client of identity assertions (ID-JAG).",
            discussion: """
                The client secret, when there is one, is printed once and stored only as a hash. With \
                --auth private_key_jwt the client signs its token requests with its own key: give its public keys \
                with --jwks-uri or --jwks-file.
                """)

        enum Grant: String, ExpressibleByArgument, CaseIterable {
            case clientCredentials = "client_credentials"
            case jwtBearer = "jwt-bearer"

            var grantType: String { self == .clientCredentials ? "client_credentials" : GrantType.jwtBearer }
        }

        @Option(help: "A name for the client, shown by `admin clients`.") var name: String
        @Option(help: "The grant it uses: client_credentials or jwt-bearer (identity assertions).")
        var grant: Grant = .clientCredentials
        @Option(help: "client_secret_basic, client_secret_post or private_key_jwt.") var auth = "client_secret_basic"
        @Option(help: "The scopes it may be granted, space-separated (from read:todos write:todos read:billing).")
        var scope: String
        @Option(help: "Where its public keys are published (private_key_jwt).") var jwksURI: String?
        @Option(help: "A file holding its public keys as a JWK Set (private_key_jwt).") var jwksFile: String?
        @Option(help: "The client id to use, e.g. the one the enterprise identity provider names in its assertions.")
        var id: String?
        @OptionGroup var output: OutputOptions

        func validate() throws {
            guard RegisteredClient.AuthMethod(rawValue: auth) != nil, auth != "none" else {
                throw ValidationError("--auth must be client_secret_basic, client_secret_post or private_key_jwt")
            }
            // Whether they are scopes of the tools is checked against the APIs' documents when the command runs.
            guard !ScopeSet(spaceSeparated: scope).isEmpty else { throw ValidationError("--scope must list scopes") }
            if auth == "private_key_jwt" {
                guard (jwksURI == nil) != (jwksFile == nil) else {
                    throw ValidationError("private_key_jwt needs the client's public keys: --jwks-uri or --jwks-file")
                }
            } else if jwksURI != nil || jwksFile != nil {
                throw ValidationError("--jwks-uri and --jwks-file are for --auth private_key_jwt")
            }
            if let jwksURI {
                guard let url = URLComponents(string: jwksURI), url.scheme == "https" || url.scheme == "http",
                    url.host?.isEmpty == false
                else { throw ValidationError("--jwks-uri must be an https URL") }
                do { try PlainHTTPRule.check(jwksURI, variable: "--jwks-uri", example: "https://…") } catch {
                    throw ValidationError("--jwks-uri must be https unless the keys are on this machine")
                }
            }
            if let id, id.isEmpty || id.hasPrefix("-") || id.count > 255 || id.contains(where: \.isWhitespace) {
                throw ValidationError("--id must be 1 to 255 characters, without spaces, not beginning with '-'")
            }
        }

        func run() async throws {
            var jwks: String? = nil
            if let path = jwksFile {
                let text = try String(contentsOfFile: path, encoding: .utf8)
                // At least one key the gateway can verify assertions with, or the client could never authenticate.
                do {
                    _ = try await KeySet.parse(jwks: Array(text.utf8), allowedAlgorithms: ClientKeys.algorithms)
                } catch {
                    throw ValidationError(
                        "\(path) does not hold a JWK Set with a usable public key (RSA of 2048 bits or more, or P-256)")
                }
                jwks = text
            }
            try await AdminContext.run { context in
                guard let method = RegisteredClient.AuthMethod(rawValue: auth) else { throw ExitCode.validationFailure }
                let offered = try await APICatalog.load(
                    for: context.configuration, logger: Logger(label: "McpGateway.admin")
                ).scopes.api
                guard offered.isSuperset(of: ScopeSet(spaceSeparated: scope)) else {
                    throw ValidationError("--scope must list scopes of the tools: \(offered)")
                }
                let secret = method == .privateKeyJWT ? nil : GatewayTokenFormat.newClientSecret(from: SystemRandomSource())
                let client = RegisteredClient(
                    id: id ?? GatewayTokenFormat.newClientID(from: SystemRandomSource()), secretDigest: secret.map(SecretDigest.hex),
                    authMethod: method, name: name, uri: nil, logoURI: nil, redirectURIs: [],
                    grantTypes: [grant.grantType], createdAt: Date(), jwks: jwks, jwksURI: jwksURI,
                    scope: ScopeSet(spaceSeparated: scope))
                if try await context.storage.clients.client(id: client.id) != nil {
                    FileHandle.standardError.write(Data("A client \(client.id) exists already.\n".utf8))
                    throw ExitCode.failure
                }
                try await context.storage.clients.insert(client: client)
                if output.json {
                    struct Added: Encodable {
                        var client: ClientView
                        var clientSecret: String?
                    }
                    return try printJSON(Added(client: ClientView(client), clientSecret: secret))
                }
                say("Client:        \(client.id)")
                if let secret { say("Client secret: \(secret)   (shown once; only its hash is stored)") }
                say("Auth method:   \(client.authMethod.rawValue)")
                say("Grant type:    \(grant.grantType)")
                say("Allowed scope: \(scope)")
            }
        }
    }
}
