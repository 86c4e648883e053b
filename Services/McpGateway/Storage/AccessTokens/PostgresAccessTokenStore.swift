import Foundation
import JWTAuth
import PostgresNIO

struct PostgresAccessTokenStore: AccessTokenStore {
    let database: PostgresDatabaseClient
    let changes: GrantChangeFeed

    func accessToken(digest: String, now: Date) async throws -> AuthenticatedAccessToken? {
        // One round trip: the token and its grant, if both still count.
        guard
            let row = try await database.query(
                """
                SELECT \(unescaped: Self.columns)
                FROM access_token t JOIN oauth_grant g ON g.id = t.grant_id
                WHERE t.digest = \(digest) AND t.expires_at > \(now) AND g.revoked_at IS NULL AND g.expires_at > \(now)
                """
            ).first()
        else { return nil }
        let cells = row.makeRandomAccess()
        let token = AccessTokenRecord(
            digest: try cells["t_digest"].decode(String.self), grantID: try cells["t_grant_id"].decode(String.self),
            clientID: try cells["t_client_id"].decode(String.self),
            scope: ScopeSet(spaceSeparated: try cells["t_scope"].decode(String.self)),
            resource: try cells["t_resource"].decode(String.self),
            expiresAt: try cells["t_expires_at"].decode(Date.self),
            dpopJKT: try cells["t_dpop_jkt"].decode(String?.self))
        return AuthenticatedAccessToken(token: token, grant: try PostgresRecords.grant(row))
    }

    /// The token's columns prefixed `t_`, then the grant's.
    private static let columns: String = {
        let token = PostgresRecords.accessTokenColumns.split(separator: ", ").map { "t.\($0) AS t_\($0)" }
        let grant = PostgresRecords.grantColumns.split(separator: ",").map {
            "g." + $0.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        return (token + grant).joined(separator: ", ")
    }()

    func deleteAccessToken(digest: String, clientID: String) async throws -> Bool {
        let deleted = try await database.transaction { connection in
            let row = try await connection.query(
                "DELETE FROM access_token WHERE digest = \(digest) AND client_id = \(clientID) RETURNING digest").first()
            if row != nil {
                try await PostgresDatabaseClient.notify(
                    .accessToken(digest: digest), on: connection)
            }
            return row != nil
        }
        if deleted { changes.publish(.accessToken(digest: digest)) }
        return deleted
    }
}
