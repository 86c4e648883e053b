import Foundation
import JWTAuth
import Logging
import Synchronization

/// The public keys of clients that authenticate with `private_key_jwt`: their registered JWK Set, or the one at their
/// `jwks_uri`, fetched and cached like a provider's (a `kid` not seen yet refetches it, rate-limited).
final class ClientKeys: Sendable {
    /// What a client may sign its assertions with.
    static let algorithms: Set<SignatureAlgorithm> = Set(SignatureAlgorithm.all)
    let fetcher: any DocumentFetching
    let clock: any WallClock
    let logger: Logger
    private let providers = Mutex<[String: (source: String, keys: any VerificationKeyProvider)]>([:])

    init(fetcher: any DocumentFetching, clock: any WallClock, logger: Logger) {
        self.fetcher = fetcher
        self.clock = clock
        self.logger = logger
    }

    /// The keys of `client`; `nil` when it registered none.
    func keys(of client: RegisteredClient) async -> (any VerificationKeyProvider)? {
        let source = client.jwksURI ?? client.jwks
        guard let source else { return nil }
        if let known = providers.withLock({ $0[client.id] }), known.source == source { return known.keys }
        let keys: any VerificationKeyProvider
        if let uri = client.jwksURI {
            keys = JWKSCache(
                configuration: .init(source: .url(uri), allowedAlgorithms: Self.algorithms), fetcher: fetcher,
                clock: clock, logger: logger)
        } else {
            do {
                keys = try await KeySet.parse(jwks: Array(source.utf8), allowedAlgorithms: Self.algorithms)
            } catch {
                logger.error(
                    "A client's registered JWK Set is not usable", metadata: ["oauth.client_id": "\(client.id)"])
                return nil
            }
        }
        providers.withLock { providers in
            if providers.count >= 1000 { providers.removeAll() }
            providers[client.id] = (source, keys)
        }
        return keys
    }
}
