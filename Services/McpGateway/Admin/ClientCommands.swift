import ArgumentParser
import Foundation
import JWTAuth
import Logging
import ServiceSupport

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
                    context.audit.record(
                        .grantRevoked, user: grant.user?.subject, client: grant.clientID, grant: grant.id,
                        detail: ["actor": "admin", "reason": "client deleted"])
                }
                say("Deleted client \(id) and its \(grants.count) active grant(s).")
            }
        }
    }
}
