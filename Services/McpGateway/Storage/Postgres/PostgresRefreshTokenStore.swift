import Foundation
import JWTAuth
import PostgresNIO

struct PostgresRefreshTokenStore: RefreshTokenStore {
    let database: PostgresDatabaseClient
    let changes: GrantChangeFeed

    func grant(refreshDigest: String) async throws -> Grant? {
        try await database.query(
            """
            SELECT \(unescaped: PostgresRecords.grantColumns) FROM oauth_grant
            WHERE id = (SELECT grant_id FROM refresh_token WHERE digest = \(refreshDigest))
            """
        ).first().map(PostgresRecords.grant)
    }

    func rotate(refreshDigest: String, grantID: String, issuing tokens: IssuedTokens, now: Date, graceUntil: Date)
        async throws -> RefreshRotation
    {
        guard let newDigest = tokens.refreshDigest else { preconditionFailure("a rotation issues a refresh token") }
        let access = tokens.access
        // One call, one transaction: the function (PostgresSchema, migration 2) holds the grant's row from the
        // decision to the new tokens, so concurrent rotations of one grant, on any instances, take turns.
        let row = try await database.query(
            """
            SELECT gateway_rotate_refresh_token(\(refreshDigest), \(grantID), \(newDigest), \(access.digest), \
            \(access.clientID), \(access.scope.description), \(access.resource), \(access.expiresAt), \(now), \
            \(graceUntil))
            """
        ).first()
        let outcome: RefreshRotation
        switch try row?.decode(String.self) {
        case "rotated": outcome = .rotated
        case "reused": outcome = .reused
        case "inactive": outcome = .inactive
        case let other: throw PostgresStoreError.corruptRow("gateway_rotate_refresh_token answered \(other ?? "nothing")")
        }
        if outcome != .rotated { changes.publish(.grant(id: grantID)) }
        return outcome
    }
}
