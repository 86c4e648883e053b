import Foundation
import GRDB

/// ``GatewayStore`` on SQLite. Each method is one transaction; the rotation and redemption rules are enforced with
/// conditional statements inside it, so they hold for concurrent requests.
struct SQLiteGatewayStore: GatewayStore {
    let database: any DatabaseWriter

    func insert(client: RegisteredClient) async throws {
        try await database.write { db in try client.insert(db) }
    }

    func save(client: RegisteredClient) async throws {
        try await database.write { db in
            var client = client
            if let known = try RegisteredClient.fetchOne(db, key: client.id) {
                client.createdAt = known.createdAt
                // A document fetched again unchanged (one served with no-store is fetched on every request) writes
                // nothing.
                guard client != known else { return }
            }
            // An upsert (ON CONFLICT DO UPDATE), not a replace: replacing would delete the row and its grants with it.
            try client.upsert(db)
        }
    }

    func client(id: String) async throws -> RegisteredClient? {
        try await database.read { db in try RegisteredClient.fetchOne(db, key: id) }
    }

    func insert(pending: PendingAuthorization) async throws {
        try await database.write { db in try pending.insert(db) }
    }

    func takePending(keyDigest: String, now: Date) async throws -> PendingAuthorization? {
        try await database.write { db in
            guard let pending = try PendingAuthorization.fetchOne(db, key: keyDigest) else { return nil }
            try pending.delete(db)
            return pending.expiresAt > now ? pending : nil
        }
    }

    func insert(grant: Grant, code: AuthorizationCodeRecord) async throws {
        try await database.write { db in
            try grant.insert(db)
            try code.insert(db)
        }
    }

    func code(digest: String) async throws -> AuthorizationCodeRecord? {
        try await database.read { db in try AuthorizationCodeRecord.fetchOne(db, key: digest) }
    }

    func redeem(codeDigest: String, issuing tokens: IssuedTokens, now: Date) async throws -> CodeRedemption {
        try await database.write { db in
            try db.execute(
                sql: """
                    UPDATE authorizationCode SET redeemedAt = ?
                    WHERE digest = ? AND redeemedAt IS NULL AND expiresAt > ?
                      AND grantID IN (SELECT id FROM oauthGrant WHERE revokedAt IS NULL AND expiresAt > ?)
                    """,
                arguments: [now, codeDigest, now, now])
            if db.changesCount == 1 {
                try store(tokens, db: db, now: now, replacingRefresh: true)
                return .redeemed
            }
            guard let code = try AuthorizationCodeRecord.fetchOne(db, key: codeDigest) else { return .unknown }
            if code.redeemedAt != nil {
                try revoke(grantID: code.grantID, db: db, now: now)
                return .replayed
            }
            return .unknown
        }
    }

    func grant(id: String) async throws -> Grant? {
        try await database.read { db in try Grant.fetchOne(db, key: id) }
    }

    func grant(refreshDigest: String) async throws -> Grant? {
        try await database.read { db in
            try Grant.fetchOne(
                db,
                sql: "SELECT oauthGrant.* FROM oauthGrant JOIN refreshToken ON refreshToken.grantID = oauthGrant.id "
                    + "WHERE refreshToken.digest = ?",
                arguments: [refreshDigest])
        }
    }

    func rotate(refreshDigest: String, grantID: String, issuing tokens: IssuedTokens, now: Date, graceUntil: Date)
        async throws -> RefreshRotation
    {
        guard let newDigest = tokens.refreshDigest else { preconditionFailure("a rotation issues a refresh token") }
        return try await database.write { db in
            guard let grant = try Grant.fetchOne(db, key: grantID), grant.isActive(at: now) else { return .inactive }
            if grant.currentRefreshDigest == refreshDigest {
                // The newest token is used: it becomes the previous one, and the one before it is no longer valid.
                try db.execute(
                    sql: """
                        UPDATE oauthGrant SET previousRefreshDigest = currentRefreshDigest, currentRefreshDigest = ?,
                          previousRefreshValidUntil = ?
                        WHERE id = ? AND currentRefreshDigest = ?
                        """,
                    arguments: [newDigest, graceUntil, grantID, refreshDigest])
            } else if grant.previousRefreshDigest == refreshDigest, let until = grant.previousRefreshValidUntil,
                now <= until
            {
                // A retry with the previous token within its grace, while the newest is still unused: replace the
                // newest, keep the grace's end.
                try db.execute(
                    sql: """
                        UPDATE oauthGrant SET currentRefreshDigest = ?
                        WHERE id = ? AND previousRefreshDigest = ? AND previousRefreshValidUntil >= ?
                        """,
                    arguments: [newDigest, grantID, refreshDigest, now])
            } else {
                try revoke(grantID: grantID, db: db, now: now)
                return .reused
            }
            guard db.changesCount == 1 else { return .inactive }
            try store(tokens, db: db, now: now, replacingRefresh: false)
            return .rotated
        }
    }

    func accessToken(digest: String, now: Date) async throws -> (token: AccessTokenRecord, grant: Grant)? {
        try await database.read { db in
            guard let token = try AccessTokenRecord.fetchOne(db, key: digest), token.expiresAt > now,
                let grant = try Grant.fetchOne(db, key: token.grantID), grant.isActive(at: now)
            else { return nil }
            return (token, grant)
        }
    }

    func deleteAccessToken(digest: String, clientID: String) async throws -> Bool {
        try await database.write { db in
            try db.execute(
                sql: "DELETE FROM accessToken WHERE digest = ? AND clientID = ?", arguments: [digest, clientID])
            return db.changesCount > 0
        }
    }

    func revokeGrant(id: String, now: Date) async throws {
        try await database.write { db in try revoke(grantID: id, db: db, now: now) }
    }

    func updateUpstream(grantID: String, tokens: UpstreamTokens) async throws {
        try await database.write { db in
            guard var grant = try Grant.fetchOne(db, key: grantID) else { return }
            grant.upstream = tokens
            try grant.update(db, columns: ["upstream"])
        }
    }

    func replaceUpstream(grantID: String, expected: UpstreamTokens, with tokens: UpstreamTokens) async throws -> Bool {
        try await database.write { db in
            guard var grant = try Grant.fetchOne(db, key: grantID), grant.upstream == expected else { return false }
            grant.upstream = tokens
            try grant.update(db, columns: ["upstream"])
            return true
        }
    }

    func activeGrants(now: Date) async throws -> [Grant] {
        try await database.read { db in
            try Grant.fetchAll(
                db, sql: "SELECT * FROM oauthGrant WHERE revokedAt IS NULL AND expiresAt > ?", arguments: [now])
        }
    }

    func sealingKeyIDs(now: Date) async throws -> Set<String> {
        try await database.read { db in
            Set(
                try String.fetchAll(
                    db,
                    sql: """
                        SELECT json_extract(upstream, '$.accessToken.keyID') FROM oauthGrant
                          WHERE revokedAt IS NULL AND expiresAt > ?1
                        UNION
                        SELECT json_extract(upstream, '$.refreshToken.keyID') FROM oauthGrant
                          WHERE revokedAt IS NULL AND expiresAt > ?1
                            AND json_extract(upstream, '$.refreshToken.keyID') IS NOT NULL
                        """,
                    arguments: [now]))
        }
    }

    func sweep(now: Date, unusedClientsBefore: Date) async throws -> Int {
        try await database.write { db in
            var removed = 0
            try db.execute(sql: "DELETE FROM pendingAuthorization WHERE expiresAt <= ?", arguments: [now])
            removed += db.changesCount
            try db.execute(sql: "DELETE FROM accessToken WHERE expiresAt <= ?", arguments: [now])
            removed += db.changesCount
            // Redeemed codes are kept a day for replay detection; their grant's deletion removes them earlier.
            try db.execute(
                sql: "DELETE FROM authorizationCode WHERE expiresAt <= ?", arguments: [now.addingTimeInterval(-86_400)])
            removed += db.changesCount
            // Expired grants, and revoked ones a week after revocation (kept that long so that a reused refresh token
            // is recognised as such), with everything that references them.
            try db.execute(
                sql: "DELETE FROM oauthGrant WHERE expiresAt <= ? OR revokedAt <= ?",
                arguments: [now, now.addingTimeInterval(-7 * 86_400)])
            removed += db.changesCount
            // Registrations nothing came of (anyone can register): gone after a day, so that /register cannot be used
            // to fill the disk. A client with a grant, even an expired one, stays until the grant goes.
            try db.execute(
                sql: """
                    DELETE FROM client WHERE createdAt <= ?
                      AND NOT EXISTS (SELECT 1 FROM oauthGrant WHERE oauthGrant.clientID = client.id)
                    """,
                arguments: [unusedClientsBefore])
            removed += db.changesCount
            return removed
        }
    }

    private func store(_ tokens: IssuedTokens, db: Database, now: Date, replacingRefresh: Bool) throws {
        try tokens.access.insert(db)
        guard let refresh = tokens.refreshDigest else { return }
        try db.execute(
            sql: "INSERT INTO refreshToken (digest, grantID, issuedAt) VALUES (?, ?, ?)",
            arguments: [refresh, tokens.access.grantID, now])
        if replacingRefresh {
            try db.execute(
                sql: """
                    UPDATE oauthGrant SET currentRefreshDigest = ?, previousRefreshDigest = NULL,
                      previousRefreshValidUntil = NULL
                    WHERE id = ?
                    """,
                arguments: [refresh, tokens.access.grantID])
        }
    }

    private func revoke(grantID: String, db: Database, now: Date) throws {
        try db.execute(
            sql: "UPDATE oauthGrant SET revokedAt = ? WHERE id = ? AND revokedAt IS NULL", arguments: [now, grantID])
        try db.execute(sql: "DELETE FROM accessToken WHERE grantID = ?", arguments: [grantID])
    }
}
