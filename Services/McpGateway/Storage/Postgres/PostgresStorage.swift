import Foundation
import JWTAuth
import Logging
import PostgresNIO

extension GatewayStorage {
    /// The stores on a PostgreSQL database, for any number of gateway instances sharing it.
    ///
    /// Until ``PostgresChangeListener`` (which the gateway runs as a service) is listening, the feed is incomplete and
    /// the access-token cache keeps nothing.
    static func postgres(_ database: PostgresDatabaseClient) -> GatewayStorage {
        let changes = GrantChangeFeed(complete: false)
        return GatewayStorage(
            clients: PostgresClientStore(database: database, changes: changes),
            pendingSignIns: PostgresPendingSignInStore(database: database),
            codes: PostgresAuthorizationCodeStore(database: database, changes: changes),
            grants: PostgresGrantStore(database: database, changes: changes),
            refreshTokens: PostgresRefreshTokenStore(database: database, changes: changes),
            accessTokens: PostgresAccessTokenStore(database: database, changes: changes),
            upstreamTokens: PostgresUpstreamTokenStore(database: database, changes: changes),
            signingKeys: PostgresSigningKeyStore(database: database),
            usedAssertions: PostgresUsedAssertionStore(database: database),
            maintenance: PostgresStoreMaintenance(database: database, changes: changes),
            changes: changes, backend: .postgresql)
    }
}

/// The advisory locks instances take turns on, each its own: one per purpose, in the gateway's schema (locks are
/// per database, and two gateways may share a database in different schemas, as the tests do).
enum PostgresAdvisoryLock {
    /// Making a signing key: instances rotating at once take turns, and the second sees the first's key.
    static let signingKey: PostgresQuery = "SELECT pg_advisory_xact_lock(72390552, hashtext(current_schema()))"
    /// The sweep of expired rows: one instance at a time (the others skip theirs).
    static let sweep: PostgresQuery = "SELECT pg_try_advisory_xact_lock(72390553, hashtext(current_schema()))"
}

extension PostgresDatabaseClient {
    /// Announces a change to every instance (this one included) when the surrounding transaction commits.
    static func notify(_ change: GrantChange, on session: PostgresSession) async throws {
        guard let payload = change.notificationPayload else { return }
        try await session.query("SELECT pg_notify(\(changeChannel), \(payload))")
    }
}

extension GrantChange {
    /// `g:<grant id>`, `a:<access token digest>` or `c:<client id>`, the payload of a `NOTIFY`.
    var notificationPayload: String? {
        switch self {
        case .grant(let id): "g:" + id
        case .accessToken(let digest): "a:" + digest
        case .client(let id): "c:" + id
        case .unknown: nil
        }
    }

    init?(notificationPayload payload: String) {
        if payload.hasPrefix("g:") {
            self = .grant(id: String(payload.dropFirst(2)))
        } else if payload.hasPrefix("a:") {
            self = .accessToken(digest: String(payload.dropFirst(2)))
        } else if payload.hasPrefix("c:") {
            self = .client(id: String(payload.dropFirst(2)))
        } else {
            return nil
        }
    }
}

// The JSON columns (jsonb). PostgresNIO encodes a Codable value as jsonb once it is declared PostgresCodable.
extension UserProfile: PostgresCodable {}
extension UpstreamTokens: PostgresCodable {}
extension ClientAuthorizationRequest: PostgresCodable {}
extension SealedValue: PostgresCodable {}

/// Reading the gateway's records from rows whose columns are named as in ``PostgresSchema``.
enum PostgresRecords {
    static let clientColumns =
        "id, secret_digest, auth_method, name, uri, logo_uri, redirect_uris, grant_types, created_at, jwks, jwks_uri, "
        + "scope"
    static let grantColumns = """
        id, client_id, user_profile, scope, resource, upstream, created_at, expires_at, revoked_at, \
        current_refresh_digest, previous_refresh_digest, previous_refresh_valid_until, dpop_jkt
        """
    static let codeColumns =
        "digest, grant_id, client_id, redirect_uri, redirect_uri_required, code_challenge, resource, expires_at, "
        + "redeemed_at"
    static let accessTokenColumns = "digest, grant_id, client_id, scope, resource, expires_at, dpop_jkt"

    static func client(_ row: PostgresRow) throws -> RegisteredClient {
        let cells = row.makeRandomAccess()
        let method = try cells["auth_method"].decode(String.self)
        guard let authMethod = RegisteredClient.AuthMethod(rawValue: method) else {
            throw PostgresStoreError.corruptRow("client.auth_method '\(method)'")
        }
        return RegisteredClient(
            id: try cells["id"].decode(String.self), secretDigest: try cells["secret_digest"].decode(String?.self),
            authMethod: authMethod, name: try cells["name"].decode(String?.self),
            uri: try cells["uri"].decode(String?.self), logoURI: try cells["logo_uri"].decode(String?.self),
            redirectURIs: try cells["redirect_uris"].decode([String].self),
            grantTypes: try cells["grant_types"].decode([String].self),
            createdAt: try cells["created_at"].decode(Date.self), jwks: try cells["jwks"].decode(String?.self),
            jwksURI: try cells["jwks_uri"].decode(String?.self),
            scope: try cells["scope"].decode(String?.self).map(ScopeSet.init(spaceSeparated:)))
    }

    static func grant(_ row: PostgresRow) throws -> Grant {
        let cells = row.makeRandomAccess()
        return Grant(
            id: try cells["id"].decode(String.self), clientID: try cells["client_id"].decode(String.self),
            user: try cells["user_profile"].decode(UserProfile?.self),
            scope: ScopeSet(spaceSeparated: try cells["scope"].decode(String.self)),
            resource: try cells["resource"].decode(String.self),
            upstream: try cells["upstream"].decode(UpstreamTokens?.self),
            createdAt: try cells["created_at"].decode(Date.self), expiresAt: try cells["expires_at"].decode(Date.self),
            revokedAt: try cells["revoked_at"].decode(Date?.self),
            currentRefreshDigest: try cells["current_refresh_digest"].decode(String?.self),
            previousRefreshDigest: try cells["previous_refresh_digest"].decode(String?.self),
            previousRefreshValidUntil: try cells["previous_refresh_valid_until"].decode(Date?.self),
            dpopJKT: try cells["dpop_jkt"].decode(String?.self))
    }

    static func code(_ row: PostgresRow) throws -> AuthorizationCodeRecord {
        let cells = row.makeRandomAccess()
        return AuthorizationCodeRecord(
            digest: try cells["digest"].decode(String.self), grantID: try cells["grant_id"].decode(String.self),
            clientID: try cells["client_id"].decode(String.self),
            redirectURI: try cells["redirect_uri"].decode(String.self),
            redirectURIRequired: try cells["redirect_uri_required"].decode(Bool.self),
            codeChallenge: try cells["code_challenge"].decode(String.self),
            resource: try cells["resource"].decode(String?.self), expiresAt: try cells["expires_at"].decode(Date.self),
            redeemedAt: try cells["redeemed_at"].decode(Date?.self))
    }

    static func accessToken(_ row: PostgresRow) throws -> AccessTokenRecord {
        let cells = row.makeRandomAccess()
        return AccessTokenRecord(
            digest: try cells["digest"].decode(String.self), grantID: try cells["grant_id"].decode(String.self),
            clientID: try cells["client_id"].decode(String.self),
            scope: ScopeSet(spaceSeparated: try cells["scope"].decode(String.self)),
            resource: try cells["resource"].decode(String.self), expiresAt: try cells["expires_at"].decode(Date.self),
            dpopJKT: try cells["dpop_jkt"].decode(String?.self))
    }
}

enum PostgresStoreError: Error, CustomStringConvertible {
    case corruptRow(String)

    var description: String {
        switch self {
        case .corruptRow(let what): "The gateway's PostgreSQL database holds an unreadable value: \(what)"
        }
    }
}

/// Statements more than one PostgreSQL store runs inside its own transaction.
enum PostgresGrantRows {
    /// Revokes a grant and deletes its access tokens, and announces it; `true` when the grant was active until now.
    @discardableResult
    static func revoke(grantID: String, connection: PostgresSession, now: Date) async throws
        -> Bool
    {
        let revoked = try await connection.query(
            """
            UPDATE oauth_grant SET revoked_at = \(now)
            WHERE id = \(grantID) AND revoked_at IS NULL AND expires_at > \(now) RETURNING id
            """).first()
        try await connection.query("DELETE FROM access_token WHERE grant_id = \(grantID)")
        try await PostgresDatabaseClient.notify(.grant(id: grantID), on: connection)
        return revoked != nil
    }

    /// Stores the tokens a redemption or rotation issues; a redemption's refresh token becomes the grant's first.
    /// Inserts a new grant.
    static func insert(_ grant: Grant, connection: PostgresSession) async throws {
        try await connection.query(
            """
            INSERT INTO oauth_grant (id, client_id, user_profile, scope, resource, upstream, created_at, \
            expires_at, revoked_at, current_refresh_digest, previous_refresh_digest, previous_refresh_valid_until, \
            dpop_jkt)
            VALUES (\(grant.id), \(grant.clientID), \(grant.user), \(grant.scope.description), \(grant.resource), \
            \(grant.upstream), \(grant.createdAt), \(grant.expiresAt), \(grant.revokedAt), \
            \(grant.currentRefreshDigest), \(grant.previousRefreshDigest), \(grant.previousRefreshValidUntil), \
            \(grant.dpopJKT))
            """)
    }

    static func store(
        _ tokens: IssuedTokens, connection: PostgresSession, now: Date, firstRefreshToken: Bool
    ) async throws {
        let access = tokens.access
        try await connection.query(
            """
            INSERT INTO access_token (digest, grant_id, client_id, scope, resource, expires_at, dpop_jkt)
            VALUES (\(access.digest), \(access.grantID), \(access.clientID), \(access.scope.description), \
            \(access.resource), \(access.expiresAt), \(access.dpopJKT))
            """)
        guard let refresh = tokens.refreshDigest else { return }
        try await connection.query(
            "INSERT INTO refresh_token (digest, grant_id, issued_at) VALUES (\(refresh), \(access.grantID), \(now))")
        if firstRefreshToken {
            try await connection.query(
                """
                UPDATE oauth_grant SET current_refresh_digest = \(refresh), dpop_jkt = \(tokens.refreshBinding)
                WHERE id = \(access.grantID)
                """)
        }
    }
}
