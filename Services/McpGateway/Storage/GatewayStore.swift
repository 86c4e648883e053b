import Foundation

/// Where the gateway keeps clients, pending sign-ins, grants and tokens.
///
/// SQLite is the embedded default (``SQLiteGatewayStore``); a server database for several gateway instances implements
/// the same protocol. Every operation that must be atomic (redeeming a code, rotating a refresh token, taking a pending
/// sign-in) is one method, which an implementation runs as one transaction or one conditional statement.
protocol GatewayStore: Sendable {
    func insert(client: RegisteredClient) async throws
    /// Inserts a client or updates it in place, keeping its grants and its first `createdAt`: a client described by a
    /// metadata document is saved again each time its document is fetched.
    func save(client: RegisteredClient) async throws
    func client(id: String) async throws -> RegisteredClient?

    func insert(pending: PendingAuthorization) async throws
    /// Removes and returns an unexpired pending sign-in: each can be used once.
    func takePending(keyDigest: String, now: Date) async throws -> PendingAuthorization?

    /// Stores a new grant and the authorization code that will start it.
    func insert(grant: Grant, code: AuthorizationCodeRecord) async throws
    func code(digest: String) async throws -> AuthorizationCodeRecord?
    /// Marks the code redeemed and stores the tokens, if it was not redeemed before. A code presented again revokes
    /// its grant and everything issued from it.
    func redeem(codeDigest: String, issuing tokens: IssuedTokens, now: Date) async throws -> CodeRedemption

    func grant(id: String) async throws -> Grant?
    /// The grant a refresh token belongs to, whether the token is current, previous or older.
    func grant(refreshDigest: String) async throws -> Grant?
    /// Rotates a refresh token by the rule in ``RefreshRotation``; when the newest token is presented, the one it
    /// replaces stays a grace token until `graceUntil`.
    func rotate(refreshDigest: String, grantID: String, issuing tokens: IssuedTokens, now: Date, graceUntil: Date)
        async throws -> RefreshRotation

    /// An unexpired access token whose grant is active, with that grant.
    func accessToken(digest: String, now: Date) async throws -> (token: AccessTokenRecord, grant: Grant)?
    /// Deletes an access token of `clientID`; `false` when it does not exist or belongs to another client.
    func deleteAccessToken(digest: String, clientID: String) async throws -> Bool
    func revokeGrant(id: String, now: Date) async throws
    /// Replaces a grant's upstream tokens after a refresh with the provider.
    func updateUpstream(grantID: String, tokens: UpstreamTokens) async throws
    /// Replaces a grant's upstream tokens only if they are still `expected` (a re-seal must not undo a refresh that
    /// ran meanwhile); `false` when they changed.
    func replaceUpstream(grantID: String, expected: UpstreamTokens, with tokens: UpstreamTokens) async throws -> Bool

    /// The grants that are neither revoked nor expired.
    func activeGrants(now: Date) async throws -> [Grant]
    /// The ids of the keys the upstream tokens of active grants are sealed under.
    func sealingKeyIDs(now: Date) async throws -> Set<String>

    /// Deletes what has expired, and clients registered before `unusedClientsBefore` that never obtained a grant;
    /// returns how many rows went.
    func sweep(now: Date, unusedClientsBefore: Date) async throws -> Int
}

enum CodeRedemption: Equatable, Sendable {
    case redeemed
    /// The code had been redeemed before: its grant is now revoked.
    case replayed
    case unknown
}

/// The outcome of presenting a refresh token.
///
/// Each use returns a new refresh token. The one presented stays usable as a grace token, so that a client that lost
/// the response can retry, but only while the new one is unused and for `REFRESH_TOKEN_REUSE_INTERVAL` (60 s by
/// default) after the rotation (RFC 9700 §4.14.2). A retry within the grace replaces the new token and does not
/// extend the grace. Presenting anything else (an older token, or the grace token after the grace) is taken for a
/// stolen token being replayed: the whole grant is revoked.
enum RefreshRotation: Equatable, Sendable {
    case rotated
    /// An older token was presented: the grant is revoked.
    case reused
    /// The grant is revoked or expired.
    case inactive
}
