import Foundation
import JWTAuth
import Logging
import Synchronization

/// Where the gateway finds a client by its `client_id`: in its database for clients that registered at `/register`,
/// or at the `client_id` itself for clients that publish a Client ID Metadata Document.
struct ClientDirectory: Sendable {
    let store: any ClientStore
    /// `nil` when metadata documents are turned off (`CLIENT_ID_METADATA_DOCUMENTS=false`).
    let documents: ClientMetadataDocuments?
    /// Registered clients recently read: every token request authenticates its client, and a registration does not
    /// change. A deleted client may stay here for ``RecentClients/lifetime``, but its grants, codes and tokens are
    /// gone with it, so it can obtain nothing.
    private let recent = RecentClients()

    init(store: any ClientStore, documents: ClientMetadataDocuments?) {
        self.store = store
        self.documents = documents
    }

    /// The client an authorization request names. A metadata document client is fetched (or taken from the cache,
    /// as long as its document's cache headers allow), so that the redirect URIs checked are the published ones.
    /// - Returns: `nil` when no such client exists.
    /// - Throws: ``ClientMetadataDocumentError`` when the client's document is not usable.
    func clientForAuthorization(_ clientID: String) async throws -> RegisteredClient? {
        guard ClientMetadataDocumentURL.isCandidate(clientID) else { return try await store.client(id: clientID) }
        guard let documents else { return nil }
        return try await documents.client(for: clientID)
    }

    /// The client of a token or revocation request. A metadata document client has a record since its authorization
    /// request (codes and grants cannot exist without one), so the record is used without fetching the document
    /// again: the redirect URI was checked against the document when the user approved.
    func client(_ clientID: String) async throws -> RegisteredClient? {
        if ClientMetadataDocumentURL.isCandidate(clientID), documents == nil { return nil }
        if let known = recent.client(clientID) { return known }
        guard let client = try await store.client(id: clientID) else { return nil }
        // A metadata document client's record changes when its document does: not kept. Nor are the clients the
        // operator registered (they carry a scope): they get tokens without a code or a grant, so deleting one, or
        // replacing its secret, must take effect at once.
        if !ClientMetadataDocumentURL.isCandidate(clientID), client.scope == nil { recent.remember(client) }
        return client
    }
}

/// A small, bounded memory of registered clients, each for ``lifetime``.
final class RecentClients: Sendable {
    static let lifetime: Duration = .seconds(30)
    static let capacity = 10_000

    private let entries = Mutex<[String: (client: RegisteredClient, until: ContinuousClock.Instant)]>([:])

    func client(_ id: String) -> RegisteredClient? {
        entries.withLock { entries in
            guard let entry = entries[id], entry.until > .now else { return nil }
            return entry.client
        }
    }

    func remember(_ client: RegisteredClient) {
        entries.withLock { entries in
            let now = ContinuousClock.now
            if entries.count >= Self.capacity { entries = entries.filter { $0.value.until > now } }
            if entries.count >= Self.capacity { entries.removeAll() }
            entries[client.id] = (client, now + Self.lifetime)
        }
    }
}

/// Client ID Metadata Documents, fetched once and reused as their cache headers allow (at most a day), failures
/// remembered for ten seconds, one fetch per URL at a time, a few fetches at most at once. Every fetched client is
/// saved in the database too, where its grants refer to it.
actor ClientMetadataDocuments {
    private let fetcher: any ClientMetadataFetching
    private let store: any ClientStore
    /// The scopes a document may name.
    private let scopes: GatewayScopes
    private let clock: any WallClock
    private let allowLoopbackHTTP: Bool
    private let logger: Logger

    /// Documents kept in memory; beyond this, the ones closest to expiry go first.
    static let capacity = 1000
    /// How long a failed fetch is remembered: long enough that repeated requests for a broken or hostile URL do not
    /// each cause a fetch, short enough that a developer fixing their document can retry at once.
    static let failureLifetime: TimeInterval = 10
    /// Fetches running at once: the gateway must not become a tool for sending many requests to other sites.
    static let maximumConcurrentFetches = 8

    private struct Entry {
        var outcome: Result<RegisteredClient, ClientMetadataDocumentError>
        var expiresAt: Date
    }

    private var entries: [String: Entry] = [:]
    private var inFlight: [String: Task<Result<RegisteredClient, ClientMetadataDocumentError>, Never>] = [:]

    init(
        fetcher: any ClientMetadataFetching, store: any ClientStore, scopes: GatewayScopes, clock: any WallClock,
        allowLoopbackHTTP: Bool, logger: Logger
    ) {
        self.fetcher = fetcher
        self.store = store
        self.scopes = scopes
        self.clock = clock
        self.allowLoopbackHTTP = allowLoopbackHTTP
        self.logger = logger
    }

    func client(for clientID: String) async throws(ClientMetadataDocumentError) -> RegisteredClient {
        let url = try ClientMetadataDocumentURL(clientID, allowLoopbackHTTP: allowLoopbackHTTP)
        if let entry = entries[clientID], entry.expiresAt > clock.now { return try entry.outcome.get() }
        if let running = inFlight[clientID] { return try await running.value.get() }
        guard inFlight.count < Self.maximumConcurrentFetches else {
            throw .unavailable("Too many client metadata documents are being fetched right now; try again shortly.")
        }
        let task = Task { await self.load(url) }
        inFlight[clientID] = task
        let outcome = await task.value
        inFlight[clientID] = nil
        return try outcome.get()
    }

    /// Number of documents (and failures) in memory; for tests.
    var cachedCount: Int { entries.count }

    private func load(_ url: ClientMetadataDocumentURL) async -> Result<RegisteredClient, ClientMetadataDocumentError> {
        let outcome: Result<RegisteredClient, ClientMetadataDocumentError>
        var lifetime = Self.failureLifetime
        do {
            let fetched = try await fetcher.fetch(url)
            let client = try ClientMetadataDocument.client(
                from: fetched.body, url: url, supportedScopes: scopes.supported, fetchedAt: clock.now)
            do { try await store.save(client: client) } catch {
                logger.error(
                    "Cannot save a client from its metadata document",
                    metadata: ["oauth.client_id": "\(url.text)", "error": "\(error)"])
                throw ClientMetadataDocumentError.unavailable("The client could not be saved; try again shortly.")
            }
            lifetime = fetched.lifetime
            outcome = .success(client)
            logger.info(
                "Client metadata document fetched",
                metadata: ["oauth.client_id": "\(url.text)", "oauth.client_name": "\(client.name ?? "")"])
        } catch let error as ClientMetadataDocumentError {
            outcome = .failure(error)
            logger.notice(
                "Client metadata document refused",
                metadata: ["oauth.client_id": "\(url.text)", "reason": "\(error.description)"])
        } catch {
            outcome = .failure(.unavailable("The metadata document could not be used."))
        }
        switch outcome {
        case .success: GatewayMetrics.metadataDocumentFetch(outcome: "ok")
        case .failure(let error):
            GatewayMetrics.metadataDocumentFetch(
                outcome: error.kind == .invalidDocument ? "invalid_document" : "unavailable")
        }
        remember(outcome, for: url.text, lifetime: lifetime)
        return outcome
    }

    private func remember(
        _ outcome: Result<RegisteredClient, ClientMetadataDocumentError>, for clientID: String, lifetime: TimeInterval
    ) {
        guard lifetime > 0 else {
            entries[clientID] = nil
            return
        }
        let now = clock.now
        entries[clientID] = Entry(outcome: outcome, expiresAt: now.addingTimeInterval(lifetime))
        guard entries.count > Self.capacity else { return }
        entries = entries.filter { $0.value.expiresAt > now }
        if entries.count > Self.capacity {
            let surplus = entries.count - Self.capacity
            for key in entries.sorted(by: { $0.value.expiresAt < $1.value.expiresAt }).prefix(surplus).map(\.key) {
                entries[key] = nil
            }
        }
    }
}
