import GRDB

extension SQLiteSchema {
    /// Clients, pending sign-ins, grants, codes, tokens.
    static let migration1 = SQLiteMigration("v1: clients, pending sign-ins, grants, codes, tokens") { db in
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
}
