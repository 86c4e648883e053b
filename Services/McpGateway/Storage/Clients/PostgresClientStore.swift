import Foundation
import JWTAuth
import PostgresNIO

struct PostgresClientStore: ClientStore {
    let database: PostgresDatabaseClient
    let changes: GrantChangeFeed

    func insert(client: RegisteredClient) async throws {
        try await database.query(
            """
            INSERT INTO client (id, secret_digest, auth_method, name, uri, logo_uri, redirect_uris, grant_types, \
            created_at, jwks, jwks_uri, scope)
            VALUES (\(client.id), \(client.secretDigest), \(client.authMethod.rawValue), \(client.name), \
            \(client.uri), \(client.logoURI), \(client.redirectURIs), \(client.grantTypes), \(client.createdAt), \
            \(client.jwks), \(client.jwksURI), \(client.scope?.description))
            """)
    }

    func save(client: RegisteredClient) async throws {
        // One statement: instances fetching the same metadata document at once cannot collide. An unchanged client
        // (a document fetched again, perhaps served with no-store) matches no row of the update and writes nothing;
        // the first createdAt is kept. A row written is announced to every instance's client cache, in the same
        // statement (so in its transaction).
        let saved = try await database.query(
            """
            WITH saved AS (
            INSERT INTO client AS known (id, secret_digest, auth_method, name, uri, logo_uri, redirect_uris, \
            grant_types, created_at)
            VALUES (\(client.id), \(client.secretDigest), \(client.authMethod.rawValue), \(client.name), \
            \(client.uri), \(client.logoURI), \(client.redirectURIs), \(client.grantTypes), \(client.createdAt))
            ON CONFLICT (id) DO UPDATE SET secret_digest = excluded.secret_digest,
              auth_method = excluded.auth_method, name = excluded.name, uri = excluded.uri,
              logo_uri = excluded.logo_uri, redirect_uris = excluded.redirect_uris, grant_types = excluded.grant_types
            WHERE (known.secret_digest, known.auth_method, known.name, known.uri, known.logo_uri, known.redirect_uris,
                   known.grant_types)
              IS DISTINCT FROM (excluded.secret_digest, excluded.auth_method, excluded.name, excluded.uri,
                   excluded.logo_uri, excluded.redirect_uris, excluded.grant_types)
            RETURNING id)
            SELECT pg_notify(\(PostgresDatabaseClient.changeChannel), 'c:' || id) FROM saved
            """
        ).first()
        if saved != nil { changes.publish(.client(id: client.id)) }
    }

    func client(id: String) async throws -> RegisteredClient? {
        try await database.query("SELECT \(unescaped: PostgresRecords.clientColumns) FROM client WHERE id = \(id)")
            .first().map(PostgresRecords.client)
    }

    func clients(now: Date) async throws -> [ClientSummary] {
        try await database.query(
            """
            SELECT \(unescaped: PostgresRecords.clientColumns),
              (SELECT count(*) FROM oauth_grant WHERE oauth_grant.client_id = client.id
                 AND revoked_at IS NULL AND expires_at > \(now)) AS active_grants
            FROM client ORDER BY created_at DESC, id
            """
        ).all().map { row in
            ClientSummary(
                client: try PostgresRecords.client(row),
                activeGrants: Int(try row.makeRandomAccess()["active_grants"].decode(Int64.self)))
        }
    }

    func deleteClient(id: String) async throws -> Bool {
        let grantIDs = try await database.transaction { connection -> [String]? in
            let grantIDs = try await connection.query(
                "DELETE FROM oauth_grant WHERE client_id = \(id) RETURNING id"
            ).decode(String.self)
            for grantID in grantIDs {
                try await PostgresDatabaseClient.notify(.grant(id: grantID), on: connection)
            }
            let deleted = try await connection.query(
                "DELETE FROM client WHERE id = \(id) RETURNING id"
            ).first()
            guard deleted != nil else { return nil }
            try await PostgresDatabaseClient.notify(.client(id: id), on: connection)
            return grantIDs
        }
        for grantID in grantIDs ?? [] { changes.publish(.grant(id: grantID)) }
        if grantIDs != nil { changes.publish(.client(id: id)) }
        return grantIDs != nil
    }
}
