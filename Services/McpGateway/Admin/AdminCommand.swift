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

/// Options every listing shares.
struct OutputOptions: ParsableArguments {
    @Flag(help: "Print JSON (one document) instead of a table.") var json = false
}

/// Writes `value` as pretty JSON with sorted keys and ISO 8601 dates.
func printJSON(_ value: some Encodable) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    encoder.dateEncodingStrategy = .iso8601
    let text = String(decoding: try encoder.encode(value), as: UTF8.self)
    // JSONEncoder escapes U+0000 to U+001F only: the other characters a terminal acts on (DEL, C1 controls such as
    // CSI, line separators, bidi overrides) are written as \u escapes too, which read back as the same JSON.
    print(jsonEscapingUnsafeCharacters(text == "[\n\n]" ? "[]" : text))
}

/// `json` with each character of ``ClaimText/isUnsafe(_:)`` that it holds raw written as a `\uXXXX` escape.
func jsonEscapingUnsafeCharacters(_ json: String) -> String {
    guard !ClaimText.isSafe(json.replacingOccurrences(of: "\n", with: "")) else { return json }
    var result = ""
    for scalar in json.unicodeScalars {
        if scalar != "\n", ClaimText.isUnsafe(scalar) {
            let hex = String(scalar.value, radix: 16, uppercase: true)
            result += "\\u" + String(repeating: "0", count: max(0, 4 - hex.count)) + hex
        } else {
            result.unicodeScalars.append(scalar)
        }
    }
    return result
}

/// Writes one line for a person at a terminal. What the database holds came from outside (a client's name, a user's
/// subject or email): control characters in it are written as escapes, so they cannot move the cursor, recolour the
/// terminal or forge lines (ClaimText).
func say(_ line: String) {
    print(ClaimText.escaped(line))
}

/// A plain text table: one header line, columns padded to their widest cell.
func printTable(_ header: [String], _ rows: [[String]]) {
    let rows = rows.map { $0.map(ClaimText.escaped) }
    let widths = header.indices.map { column in
        ([header] + rows).map { $0[column].count }.max() ?? 0
    }
    for row in [header] + rows {
        let cells = row.enumerated().map { index, cell in
            index == row.count - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
        }
        say(cells.joined(separator: "  "))
    }
}

/// How a client appears in `admin` output: never its secret's digest.
struct ClientView: Encodable {
    var id: String
    var name: String?
    var authMethod: String
    var redirectURIs: [String]
    var grantTypes: [String]
    var createdAt: Date
    var activeGrants: Int?
    /// The scope the operator allowed a machine or identity-assertion client; `nil` for the others.
    var scope: String?
    var jwksURI: String?

    init(_ client: RegisteredClient, activeGrants: Int? = nil) {
        scope = client.scope?.description
        jwksURI = client.jwksURI
        id = client.id
        name = client.name
        authMethod = client.authMethod.rawValue
        redirectURIs = client.redirectURIs
        grantTypes = client.grantTypes
        createdAt = client.createdAt
        self.activeGrants = activeGrants
    }
}

/// How a grant appears in `admin` output: who, which client, what, until when. No token, digest or sealed value.
struct GrantView: Encodable {
    var id: String
    var clientID: String
    /// The user's subject; `nil` for a machine client's grant.
    var user: String?
    var email: String?
    var scope: String
    var createdAt: Date
    var expiresAt: Date
    /// When the provider's access token expires; `nil` when no provider signed the grant in.
    var upstreamExpiresAt: Date?

    init(_ grant: Grant) {
        id = grant.id
        clientID = grant.clientID
        user = grant.user?.subject
        email = grant.user?.email
        scope = grant.scope.description
        createdAt = grant.createdAt
        expiresAt = grant.expiresAt
        upstreamExpiresAt = grant.upstream?.expiresAt
    }
}

extension Date {
    /// `2026-12-01T10:00:00Z`.
    var adminText: String { formatted(.iso8601) }
}

extension Admin {
    /// `admin clients`
    struct Clients: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "clients", abstract: "List registered clients, newest first, with their active grants.")
        @OptionGroup var output: OutputOptions

        func run() async throws {
            try await AdminContext.run { context in
                let clients = try await context.storage.clients.clients(now: Date())
                if output.json {
                    return try printJSON(clients.map { ClientView($0.client, activeGrants: $0.activeGrants) })
                }
                printTable(
                    ["CLIENT ID", "NAME", "AUTH", "GRANTS", "CREATED"],
                    clients.map {
                        [
                            $0.client.id, $0.client.name ?? "-", $0.client.authMethod.rawValue, "\($0.activeGrants)",
                            $0.client.createdAt.adminText,
                        ]
                    })
            }
        }
    }

    /// `admin client ID`
    struct ShowClient: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "client", abstract: "Show one client and its active grants.")
        @Argument(help: "The client id.") var id: String
        @OptionGroup var output: OutputOptions

        func run() async throws {
            try await AdminContext.run { context in
                guard let client = try await context.storage.clients.client(id: id) else {
                    FileHandle.standardError.write(Data("No client \(id).\n".utf8))
                    throw Admin.notFound
                }
                let grants = try await context.storage.grants.activeGrants(.client(id: id), now: Date())
                if output.json {
                    struct Shown: Encodable {
                        var client: ClientView
                        var grants: [GrantView]
                    }
                    return try printJSON(
                        Shown(
                            client: ClientView(client, activeGrants: grants.count), grants: grants.map(GrantView.init)))
                }
                say("Client:        \(client.id)")
                say("Name:          \(client.name ?? "-")")
                say("Auth method:   \(client.authMethod.rawValue)")
                say("Redirect URIs: \(client.redirectURIs.joined(separator: " "))")
                say("Grant types:   \(client.grantTypes.joined(separator: " "))")
                if let scope = client.scope { say("Allowed scope: \(scope)") }
                if let uri = client.jwksURI { say("JWKS URI:      \(uri)") }
                if client.jwks != nil { say("JWKS:          registered") }
                say("Created:       \(client.createdAt.adminText)")
                say("Active grants: \(grants.count)")
                if !grants.isEmpty {
                    say("")
                    printGrants(grants)
                }
            }
        }
    }

    /// `admin delete-client ID`
    struct DeleteClient: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "delete-client",
            abstract: "Delete a client with its grants and tokens.")
        @Argument(help: "The client id.") var id: String

        func run() async throws {
            try await AdminContext.run { context in
                let grants = try await context.storage.grants.activeGrants(.client(id: id), now: Date())
                guard try await context.storage.clients.deleteClient(id: id) else {
                    FileHandle.standardError.write(Data("No client \(id).\n".utf8))
                    throw Admin.notFound
                }
                for grant in grants {
                    AuditLog.shared.record(
                        .grantRevoked, user: grant.user?.subject, client: grant.clientID, grant: grant.id,
                        detail: ["actor": "admin", "reason": "client deleted"])
                }
                say("Deleted client \(id) and its \(grants.count) active grant(s).")
            }
        }
    }

    /// `admin grants (--user SUB | --client ID | --all)`
    struct Grants: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "grants", abstract: "List active grants: a user's, a client's, or all.")
        @OptionGroup var selection: GrantSelection
        @OptionGroup var output: OutputOptions

        func run() async throws {
            try await AdminContext.run { context in
                let grants = try await context.storage.grants.activeGrants(selection.filter, now: Date())
                if output.json { return try printJSON(grants.map(GrantView.init)) }
                if grants.isEmpty { say("No active grants.") } else { printGrants(grants) }
            }
        }
    }

    /// `admin revoke (--grant ID | --user SUB | --client ID)`
    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "revoke",
            abstract: "Revoke a grant, all of a user's, or all of a client's.",
            discussion: """
                On PostgreSQL every running gateway instance refuses the revoked tokens within milliseconds; on SQLite \
                the running gateway is another process, and refuses them when its cache entry ends (at most 10 \
                seconds). The user signs in again from their MCP client.
                """)
        @Option(help: "A grant id.") var grant: String?
        @Option(help: "A user's subject: all of the user's grants.") var user: String?
        @Option(help: "A client id: all of the client's grants.") var client: String?

        func validate() throws {
            guard [grant, user, client].compactMap({ $0 }).count == 1 else {
                throw ValidationError("Give exactly one of --grant, --user or --client.")
            }
        }

        func run() async throws {
            try await AdminContext.run { context in
                let now = Date()
                let targets: [Grant]
                if let grant {
                    guard let found = try await context.storage.grants.grant(id: grant), found.isActive(at: now) else {
                        FileHandle.standardError.write(Data("No active grant \(grant).\n".utf8))
                        throw Admin.notFound
                    }
                    targets = [found]
                } else {
                    let filter: GrantFilter = user.map { .user(subject: $0) } ?? .client(id: client ?? "")
                    targets = try await context.storage.grants.activeGrants(filter, now: now)
                }
                var revoked = 0
                for target in targets where try await context.storage.grants.revokeGrant(id: target.id, now: now) {
                    revoked += 1
                    AuditLog.shared.record(
                        .grantRevoked, user: target.user?.subject, client: target.clientID, grant: target.id,
                        detail: ["actor": "admin"])
                }
                say("Revoked \(revoked) grant(s).")
            }
        }
    }

    /// `admin purge`
    struct Purge: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "purge",
            abstract: "Delete what has expired now (every gateway also does it once a minute).")
        @OptionGroup var output: OutputOptions

        func run() async throws {
            try await AdminContext.run { context in
                let now = Date()
                let report = try await context.storage.maintenance.sweep(
                    now: now, unusedClientsBefore: now.addingTimeInterval(-context.settings.unusedClientLifetime))
                if output.json { return try printJSON(report) }
                say(
                    "Deleted \(report.total) row(s): \(report.grants) grant(s), \(report.accessTokens) access token(s), "
                        + "\(report.codes) code(s), \(report.pendingSignIns) pending sign-in(s), "
                        + "\(report.clients) unused client(s).")
            }
        }
    }

    /// `admin counts`
    struct Counts: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "counts", abstract: "Count clients, active grants, users, access tokens and pending sign-ins.")
        @OptionGroup var output: OutputOptions

        func run() async throws {
            try await AdminContext.run { context in
                let counts = try await context.storage.maintenance.counts(now: Date())
                if output.json { return try printJSON(counts) }
                printTable(
                    ["CLIENTS", "ACTIVE GRANTS", "USERS", "ACCESS TOKENS", "PENDING SIGN-INS"],
                    [
                        [
                            "\(counts.clients)", "\(counts.activeGrants)", "\(counts.users)", "\(counts.accessTokens)",
                            "\(counts.pendingSignIns)",
                        ]
                    ])
            }
        }
    }

    /// `admin reseal`: every grant's upstream tokens under the current `GATEWAY_ENCRYPTION_KEY`.
    struct Reseal: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "reseal",
            abstract: "Seal every upstream token again under the current GATEWAY_ENCRYPTION_KEY.",
            discussion: """
                Run it after rotating GATEWAY_ENCRYPTION_KEY (the old key moved to GATEWAY_ENCRYPTION_KEYS_OLD); when it \
                reports nothing left under an old key, that key can be removed. Safe while gateways are running. Exits \
                with 1 when some tokens could not be opened with any configured key (they are left as they are).
                """)

        func run() async throws {
            try await AdminContext.run { context in
                let configuration = context.configuration
                let cipher = TokenCipher(
                    secret: configuration.encryptionSecret, previousSecrets: configuration.previousEncryptionSecrets)
                let report = try await UpstreamTokenResealer(
                    grants: context.storage.grants, upstreamTokens: context.storage.upstreamTokens, cipher: cipher
                ).reseal(now: Date())
                say(
                    "Re-sealed \(report.resealed) grant(s) under key id \(cipher.current.id); \(report.current) already "
                        + "were; \(report.changedMeanwhile) refreshed meanwhile (already under it).")
                guard report.unreadable.isEmpty else {
                    for (keyID, count) in report.unreadable.sorted(by: { $0.key < $1.key }) {
                        say(
                            "\(count) grant(s) sealed under key id \(keyID), which no configured key opens: left "
                                + "unchanged.")
                    }
                    throw ExitCode(1)
                }
            }
        }
    }
}

/// `--user SUB`, `--client ID` or `--all`.
struct GrantSelection: ParsableArguments {
    @Option(help: "A user's subject (the `sub` of their ID token, e.g. auth0|alice).") var user: String?
    @Option(help: "A client id.") var client: String?
    @Flag(help: "Every active grant.") var all = false

    var filter: GrantFilter {
        if let user { return .user(subject: user) }
        if let client { return .client(id: client) }
        return .all
    }

    func validate() throws {
        let given = [user != nil, client != nil, all].filter { $0 }.count
        guard given <= 1 else { throw ValidationError("Give at most one of --user, --client or --all.") }
    }
}

func printGrants(_ grants: [Grant]) {
    printTable(
        ["GRANT ID", "USER", "CLIENT ID", "SCOPE", "CREATED", "EXPIRES"],
        grants.map {
            [
                $0.id, $0.user?.subject ?? "(machine client)", $0.clientID, $0.scope.description,
                $0.createdAt.adminText, $0.expiresAt.adminText,
            ]
        })
}
