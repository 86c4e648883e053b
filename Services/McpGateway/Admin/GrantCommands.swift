import ArgumentParser
import Foundation
import JWTAuth
import Logging
import ServiceSupport

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

extension Admin {
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
                    context.audit.record(
                        .grantRevoked, user: target.user?.subject, client: target.clientID, grant: target.id,
                        detail: ["actor": "admin"])
                }
                say("Revoked \(revoked) grant(s).")
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
