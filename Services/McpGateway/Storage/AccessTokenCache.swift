import Foundation
import Synchronization

/// A ``GatewayStore`` that remembers authenticated access tokens for a few seconds, so that `/mcp` requests do not
/// read the database each time; everything else goes to the wrapped store.
///
/// Every write of this process that can end a token's validity (revoking a grant, deleting an access token, a replayed
/// code, a reused refresh token, new upstream tokens) drops the affected entries, so within one gateway the cache
/// never answers with anything the database would not. Several gateway instances sharing a database see each other's
/// revocations after at most ``lifetime``.
final class AccessTokenCache: GatewayStore {
    private struct Entry {
        let token: AccessTokenRecord
        let grant: Grant
        let validUntil: Date
    }

    private struct State {
        var entries: [String: Entry] = [:]
        /// Counts invalidations. A lookup remembers it before reading the database and stores what it read only if no
        /// invalidation happened meanwhile: a read that began before a revocation committed cannot put the revoked
        /// token back after the revocation cleared it.
        var generation: UInt64 = 0
    }

    private let store: any GatewayStore
    private let lifetime: TimeInterval
    private let capacity: Int
    private let state = Mutex(State())

    init(wrapping store: any GatewayStore, lifetime: TimeInterval = 10, capacity: Int = 10_000) {
        self.store = store
        self.lifetime = lifetime
        self.capacity = capacity
    }

    func accessToken(digest: String, now: Date) async throws -> (token: AccessTokenRecord, grant: Grant)? {
        let (cached, generation) = state.withLock { ($0.entries[digest], $0.generation) }
        if let cached, cached.validUntil > now { return (cached.token, cached.grant) }
        guard let found = try await store.accessToken(digest: digest, now: now) else { return nil }
        let validUntil = min(found.token.expiresAt, found.grant.expiresAt, now.addingTimeInterval(lifetime))
        state.withLock { state in
            guard state.generation == generation else { return }
            if state.entries.count >= capacity { state.entries = state.entries.filter { $0.value.validUntil > now } }
            if state.entries.count >= capacity { state.entries.removeAll() }
            state.entries[digest] = Entry(token: found.token, grant: found.grant, validUntil: validUntil)
        }
        return found
    }

    /// Drops what `grantID` stands for. Called before a write (no cached answer while it runs) and after it (nothing
    /// read before it committed survives, see ``State/generation``).
    private func forget(grantID: String) {
        state.withLock { state in
            state.generation &+= 1
            state.entries = state.entries.filter { $0.value.grant.id != grantID }
        }
    }

    private func forget(digest: String) {
        state.withLock { state in
            state.generation &+= 1
            state.entries.removeValue(forKey: digest)
        }
    }

    // MARK: Writes that end or change what a cached token stands for

    func deleteAccessToken(digest: String, clientID: String) async throws -> Bool {
        forget(digest: digest)
        defer { forget(digest: digest) }
        return try await store.deleteAccessToken(digest: digest, clientID: clientID)
    }

    func revokeGrant(id: String, now: Date) async throws {
        forget(grantID: id)
        defer { forget(grantID: id) }
        try await store.revokeGrant(id: id, now: now)
    }

    func updateUpstream(grantID: String, tokens: UpstreamTokens) async throws {
        defer { forget(grantID: grantID) }
        try await store.updateUpstream(grantID: grantID, tokens: tokens)
    }

    func redeem(codeDigest: String, issuing tokens: IssuedTokens, now: Date) async throws -> CodeRedemption {
        let outcome = try await store.redeem(codeDigest: codeDigest, issuing: tokens, now: now)
        if outcome == .replayed { forget(grantID: tokens.access.grantID) }
        return outcome
    }

    func rotate(refreshDigest: String, grantID: String, issuing tokens: IssuedTokens, now: Date, graceUntil: Date)
        async throws -> RefreshRotation
    {
        let outcome = try await store.rotate(
            refreshDigest: refreshDigest, grantID: grantID, issuing: tokens, now: now, graceUntil: graceUntil)
        if outcome != .rotated { forget(grantID: grantID) }
        return outcome
    }

    func replaceUpstream(grantID: String, expected: UpstreamTokens, with tokens: UpstreamTokens) async throws -> Bool {
        defer { forget(grantID: grantID) }
        return try await store.replaceUpstream(grantID: grantID, expected: expected, with: tokens)
    }

    // MARK: Everything else, unchanged

    func activeGrants(now: Date) async throws -> [Grant] { try await store.activeGrants(now: now) }
    func sealingKeyIDs(now: Date) async throws -> Set<String> { try await store.sealingKeyIDs(now: now) }

    func insert(client: RegisteredClient) async throws { try await store.insert(client: client) }
    func save(client: RegisteredClient) async throws { try await store.save(client: client) }
    func client(id: String) async throws -> RegisteredClient? { try await store.client(id: id) }
    func insert(pending: PendingAuthorization) async throws { try await store.insert(pending: pending) }
    func takePending(keyDigest: String, now: Date) async throws -> PendingAuthorization? {
        try await store.takePending(keyDigest: keyDigest, now: now)
    }
    func insert(grant: Grant, code: AuthorizationCodeRecord) async throws {
        try await store.insert(grant: grant, code: code)
    }
    func code(digest: String) async throws -> AuthorizationCodeRecord? { try await store.code(digest: digest) }
    func grant(id: String) async throws -> Grant? { try await store.grant(id: id) }
    func grant(refreshDigest: String) async throws -> Grant? { try await store.grant(refreshDigest: refreshDigest) }
    func sweep(now: Date, unusedClientsBefore: Date) async throws -> Int {
        try await store.sweep(now: now, unusedClientsBefore: unusedClientsBefore)
    }
}
