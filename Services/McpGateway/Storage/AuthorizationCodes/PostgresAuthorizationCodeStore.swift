import Foundation
import JWTAuth
import PostgresNIO

struct PostgresAuthorizationCodeStore: AuthorizationCodeStore {
    let database: PostgresDatabaseClient
    let changes: GrantChangeFeed

    func insert(grant: Grant, code: AuthorizationCodeRecord) async throws {
        try await database.transaction { connection in
            try await PostgresGrantRows.insert(grant, connection: connection)
            try await connection.query(
                """
                INSERT INTO authorization_code (digest, grant_id, client_id, redirect_uri, redirect_uri_required, \
                code_challenge, resource, expires_at, redeemed_at)
                VALUES (\(code.digest), \(code.grantID), \(code.clientID), \(code.redirectURI), \
                \(code.redirectURIRequired), \(code.codeChallenge), \(code.resource), \(code.expiresAt), \
                \(code.redeemedAt))
                """)
        }
    }

    func code(digest: String) async throws -> AuthorizationCodeRecord? {
        try await database.query(
            "SELECT \(unescaped: PostgresRecords.codeColumns) FROM authorization_code WHERE digest = \(digest)"
        ).first().map(PostgresRecords.code)
    }

    func redeem(codeDigest: String, issuing tokens: IssuedTokens, now: Date) async throws -> CodeRedemption {
        let (outcome, revokedGrant): (CodeRedemption, String?) = try await database.transaction { connection in
            // Under READ COMMITTED a concurrent redemption, on any instance, waits for this row's lock and then finds
            // redeemed_at set: exactly one of them changes the row.
            let redeemed = try await connection.query(
                """
                UPDATE authorization_code SET redeemed_at = \(now)
                WHERE digest = \(codeDigest) AND redeemed_at IS NULL AND expires_at > \(now)
                  AND grant_id IN (SELECT id FROM oauth_grant WHERE revoked_at IS NULL AND expires_at > \(now))
                RETURNING digest
                """).first()
            if redeemed != nil {
                try await PostgresGrantRows.store(
                    tokens, connection: connection, now: now, firstRefreshToken: true)
                return (.redeemed, nil)
            }
            guard
                let row = try await connection.query(
                    "SELECT \(unescaped: PostgresRecords.codeColumns) FROM authorization_code WHERE digest = \(codeDigest)").first(),
                case let code = try PostgresRecords.code(row), code.redeemedAt != nil
            else { return (.unknown, nil) }
            // RFC 6749 §4.1.2: a code used twice revokes what it issued.
            try await PostgresGrantRows.revoke(
                grantID: code.grantID, connection: connection, now: now)
            return (.replayed, code.grantID)
        }
        if let revokedGrant { changes.publish(.grant(id: revokedGrant)) }
        return outcome
    }
}
