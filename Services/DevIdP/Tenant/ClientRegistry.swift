import Foundation
import ServiceSupport
import Synchronization

/// The applications DevIdP knows: those configured in `.dev.vars`, and those registered dynamically
/// (`POST /oidc/register`, kept in memory until restart, at most ``capacity``).
final class ClientRegistry: Sendable {
    private let clients: Mutex<[String: Client]>
    static let capacity = 1000

    init(_ configured: [Client]) {
        self.clients = Mutex(Dictionary(configured.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first }))
    }

    func client(id: String) -> Client? { clients.withLock { $0[id] } }

    /// Adds a dynamically registered client; `false` when the registry is full.
    func register(_ client: Client) -> Bool {
        clients.withLock { clients in
            guard clients.count < Self.capacity else { return false }
            clients[client.id] = client
            return true
        }
    }
}
