import Foundation
import JWTAuth
import PostgresNIO

struct PostgresRefreshTokenStore: RefreshTokenStore {
    let database: PostgresDatabaseClient
    let changes: GrantChangeFeed

    func grant(refreshDigest: String) async throws -> GrantSummary? {
        guard
            let row = try await database.query(
                """
                SELECT id, client_id, user_profile, scope, resource, expires_at, revoked_at, dpop_jkt,
                  current_refresh_digest, previous_refresh_digest, previous_refresh_valid_until FROM oauth_grant
                WHERE id = (SELECT grant_id FROM refresh_token WHERE digest = \(refreshDigest))
                """
            ).first()
        else { return nil }
        let cells = row.makeRandomAccess()
        return GrantSummary(
            id: try cells["id"].decode(String.self), clientID: try cells["client_id"].decode(String.self),
            user: try cells["user_profile"].decode(UserProfile?.self),
            scope: ScopeSet(spaceSeparated: try cells["scope"].decode(String.self)),
            resource: try cells["resource"].decode(String.self), expiresAt: try cells["expires_at"].decode(Date.self),
            revokedAt: try cells["revoked_at"].decode(Date?.self), dpopJKT: try cells["dpop_jkt"].decode(String?.self),
            currentRefreshDigest: try cells["current_refresh_digest"].decode(String?.self),
            previousRefreshDigest: try cells["previous_refresh_digest"].decode(String?.self),
            previousRefreshValidUntil: try cells["previous_refresh_valid_until"].decode(Date?.self))
    }

    func rotate(refreshDigest: String, grantID: String, issuing tokens: IssuedTokens, now: Date, graceUntil: Date)
        async throws -> RefreshRotation
    {
        guard let newDigest = tokens.refreshDigest else { preconditionFailure("a rotation issues a refresh token") }
        let access = tokens.access
        // One call, one transaction: the function (PostgresSchema, migrations 2 and 5) holds the grant's row from the
        // decision to the new tokens, so concurrent rotations of one grant, on any instances, take turns.
        let row = try await database.query(
            """
            SELECT gateway_rotate_refresh_token(\(refreshDigest), \(grantID), \(newDigest), \(access.digest), \
            \(access.clientID), \(access.scope.description), \(access.resource), \(access.expiresAt), \(now), \
            \(graceUntil), \(access.dpopJKT))
            """
        ).first()
        let outcome: RefreshRotation
        switch try row?.decode(String.self) {
        case "rotated": outcome = .rotated
        case "reused": outcome = .reused
        case "inactive": outcome = .inactive
        case let other:
            throw PostgresStoreError.corruptRow("gateway_rotate_refresh_token answered \(other ?? "nothing")")
        }
        if outcome != .rotated { changes.publish(.grant(id: grantID)) }
        return outcome
    }
}
