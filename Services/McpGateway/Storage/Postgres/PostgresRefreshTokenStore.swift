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
        let logger = database.logger
        let outcome: RefreshRotation = try await database.transaction { connection in
            // FOR UPDATE: concurrent rotations of one grant, on any instances, take turns, each seeing the one before.
            guard
                let row = try await connection.query(
                    "SELECT \(unescaped: PostgresRecords.grantColumns) FROM oauth_grant WHERE id = \(grantID) FOR UPDATE",
                    logger: logger
                ).first(),
                case let grant = try PostgresRecords.grant(row), grant.isActive(at: now)
            else { return .inactive }
            switch RefreshRotationRule.decide(presented: refreshDigest, grant: grant, now: now) {
            case .rotateCurrent:
                try await connection.query(
                    """
                    UPDATE oauth_grant SET previous_refresh_digest = current_refresh_digest,
                      current_refresh_digest = \(newDigest), previous_refresh_valid_until = \(graceUntil)
                    WHERE id = \(grantID)
                    """, logger: logger)
            case .replaceSuccessor:
                try await connection.query(
                    "UPDATE oauth_grant SET current_refresh_digest = \(newDigest) WHERE id = \(grantID)", logger: logger
                )
            case .revoke:
                try await PostgresGrantRows.revoke(grantID: grantID, connection: connection, now: now, logger: logger)
                return .reused
            }
            try await PostgresGrantRows.store(
                tokens, connection: connection, now: now, firstRefreshToken: false, logger: logger)
            return .rotated
        }
        if outcome != .rotated { changes.publish(.grant(id: grantID)) }
        return outcome
    }
}
