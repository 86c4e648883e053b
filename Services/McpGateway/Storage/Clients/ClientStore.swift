import Foundation
import JWTAuth

/// Clients registered through `/register`, or described by a client metadata document.
protocol ClientStore: Sendable {
    func insert(client: RegisteredClient) async throws
    /// Inserts a client or updates it in place, keeping its grants and its first `createdAt`: a client described by a
    /// metadata document is saved again each time its document is fetched. An unchanged client writes nothing.
    func save(client: RegisteredClient) async throws
    func client(id: String) async throws -> RegisteredClient?
    /// Every client, newest first, with how many active grants each has.
    func clients(now: Date) async throws -> [ClientSummary]
    /// Deletes a client with everything issued to it; `false` when there was no such client.
    func deleteClient(id: String) async throws -> Bool
}

struct ClientSummary: Sendable, Equatable {
    var client: RegisteredClient
    var activeGrants: Int
}
