import Foundation
import GRDB
import ServiceSupport

/// The gateway's SQLite schema, defined by migrations. Codes, access and refresh tokens reference their grant and go
/// with it; grants reference their client and go with it.
enum SQLiteSchema {
    /// Opens and migrates the database at `path` (see `SQLiteFile`). Synchronous: run it before the server starts.
    static func open(path: String) throws -> DatabasePool {
        try SQLiteFile.openPool(path: path, migrator: migrator)
    }

    /// A private in-memory database, for tests.
    static func inMemory() throws -> DatabaseQueue {
        try SQLiteFile.inMemory(migrator: migrator)
    }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1: clients, pending sign-ins, grants, codes, tokens") { db in
            try db.create(table: "client") { table in
                table.primaryKey("id", .text)
                table.column("secretDigest", .text)
                table.column("authMethod", .text).notNull()
                table.column("name", .text)
                table.column("uri", .text)
                table.column("logoURI", .text)
                table.column("redirectURIs", .jsonText).notNull()
                table.column("grantTypes", .jsonText).notNull()
                table.column("createdAt", .datetime).notNull()
            }
            try db.create(table: "pendingAuthorization") { table in
                table.primaryKey("keyDigest", .text)
                table.column("bindingDigest", .text).notNull()
                table.column("stage", .text).notNull()
                table.column("request", .jsonText).notNull()
                table.column("csrfDigest", .text)
                table.column("upstreamNonce", .text)
                table.column("upstreamVerifier", .jsonText)
                table.column("expiresAt", .datetime).notNull().indexed()
            }
            try db.create(table: "oauthGrant") { table in
                table.primaryKey("id", .text)
                table.column("clientID", .text).notNull().references("client", onDelete: .cascade)
                table.column("user", .jsonText).notNull()
                table.column("scope", .text).notNull()
                table.column("resource", .text).notNull()
                table.column("upstream", .jsonText).notNull()
                table.column("createdAt", .datetime).notNull()
                table.column("expiresAt", .datetime).notNull().indexed()
                table.column("revokedAt", .datetime)
                table.column("currentRefreshDigest", .text)
                table.column("previousRefreshDigest", .text)
            }
            try db.create(table: "authorizationCode") { table in
                table.primaryKey("digest", .text)
                table.column("grantID", .text).notNull().indexed().references("oauthGrant", onDelete: .cascade)
                table.column("clientID", .text).notNull()
                table.column("redirectURI", .text).notNull()
                table.column("codeChallenge", .text).notNull()
                table.column("resource", .text)
                table.column("expiresAt", .datetime).notNull()
                table.column("redeemedAt", .datetime)
            }
            try db.create(table: "accessToken") { table in
                table.primaryKey("digest", .text)
                table.column("grantID", .text).notNull().indexed().references("oauthGrant", onDelete: .cascade)
                table.column("clientID", .text).notNull()
                table.column("scope", .text).notNull()
                table.column("resource", .text).notNull()
                table.column("expiresAt", .datetime).notNull().indexed()
            }
            try db.create(table: "refreshToken") { table in
                table.primaryKey("digest", .text)
                table.column("grantID", .text).notNull().indexed().references("oauthGrant", onDelete: .cascade)
                table.column("issuedAt", .datetime).notNull()
            }
        }
        migrator.registerMigration("v2: bounded refresh grace, redirect_uri required at /token") { db in
            try db.alter(table: "oauthGrant") { table in
                table.add(column: "previousRefreshValidUntil", .datetime)
            }
            try db.alter(table: "authorizationCode") { table in
                table.add(column: "redirectURIRequired", .boolean).notNull().defaults(to: true)
            }
        }
        migrator.registerMigration("v3: pending sign-ins wait for the provider only") { db in
            // The consent step keeps its state in a sealed form field (ConsentTicket) since v2; no row has another
            // stage.
            try db.alter(table: "pendingAuthorization") { table in
                table.drop(column: "stage")
                table.drop(column: "csrfDigest")
            }
        }
        migrator.registerMigration("v4: the keys downstream tokens are signed with") { db in
            try db.create(table: "signingKey") { table in
                table.primaryKey("id", .text)
                table.column("sealedBy", .text).notNull()
                table.column("sealedKey", .blob).notNull()
                table.column("createdAt", .datetime).notNull()
            }
        }
        migrator.registerMigration("v5: grants without a sign-in (machine clients, identity assertions)") { db in
            // SQLite cannot drop NOT NULL in place: the table is rebuilt (foreign keys are off during migrations, and
            // codes and tokens keep referring to the table by name).
            try db.create(table: "oauthGrant_v5") { table in
                table.primaryKey("id", .text)
                table.column("clientID", .text).notNull().references("client", onDelete: .cascade)
                // NULL for a machine client's grant (client credentials): no user.
                table.column("user", .jsonText)
                table.column("scope", .text).notNull()
                table.column("resource", .text).notNull()
                // NULL when no provider signed the user in (client credentials, an identity assertion).
                table.column("upstream", .jsonText)
                table.column("createdAt", .datetime).notNull()
                table.column("expiresAt", .datetime).notNull()
                table.column("revokedAt", .datetime)
                table.column("currentRefreshDigest", .text)
                table.column("previousRefreshDigest", .text)
                table.column("previousRefreshValidUntil", .datetime)
            }
            try db.execute(
                sql: """
                    INSERT INTO oauthGrant_v5 (id, clientID, user, scope, resource, upstream, createdAt, expiresAt,
                      revokedAt, currentRefreshDigest, previousRefreshDigest, previousRefreshValidUntil)
                    SELECT id, clientID, user, scope, resource, upstream, createdAt, expiresAt, revokedAt,
                      currentRefreshDigest, previousRefreshDigest, previousRefreshValidUntil FROM oauthGrant
                    """)
            try db.drop(table: "oauthGrant")
            try db.rename(table: "oauthGrant_v5", to: "oauthGrant")
            try db.create(index: "oauthGrant_expiresAt", on: "oauthGrant", columns: ["expiresAt"])
            try db.create(index: "oauthGrant_clientID", on: "oauthGrant", columns: ["clientID"])
            // Machine clients and clients of identity assertions, registered by the operator.
            try db.alter(table: "client") { table in
                table.add(column: "jwks", .text)
                table.add(column: "jwksURI", .text)
                table.add(column: "scope", .text)
            }
            // Assertions (client assertions, identity assertions) already used, until they expire.
            try db.create(table: "usedAssertion") { table in
                table.primaryKey("digest", .text)
                table.column("expiresAt", .datetime).notNull().indexed()
            }
        }
        migrator.registerMigration("v6: DPoP-bound tokens") { db in
            // The RFC 7638 thumbprint of the key an access token, or a public client's refresh tokens, are bound to.
            try db.alter(table: "accessToken") { table in table.add(column: "dpopJKT", .text) }
            try db.alter(table: "oauthGrant") { table in table.add(column: "dpopJKT", .text) }
        }
        return migrator
    }
}

extension RegisteredClient: FetchableRecord, PersistableRecord {
    static let databaseTableName = "client"
}

extension PendingAuthorization: FetchableRecord, PersistableRecord {
    static let databaseTableName = "pendingAuthorization"
}

extension Grant: FetchableRecord, PersistableRecord {
    static let databaseTableName = "oauthGrant"
}

extension AuthorizationCodeRecord: FetchableRecord, PersistableRecord {
    static let databaseTableName = "authorizationCode"
}

extension AccessTokenRecord: FetchableRecord, PersistableRecord {
    static let databaseTableName = "accessToken"
}
