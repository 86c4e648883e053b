import Foundation
import JWTAuth
import PostgresNIO

struct PostgresPendingSignInStore: PendingSignInStore {
    let database: PostgresDatabaseClient

    func insert(pending: PendingAuthorization) async throws {
        try await database.query(
            """
            INSERT INTO pending_authorization (key_digest, binding_digest, request, upstream_nonce, upstream_verifier, \
            expires_at)
            VALUES (\(pending.keyDigest), \(pending.bindingDigest), \(pending.request), \(pending.upstreamNonce), \
            \(pending.upstreamVerifier), \(pending.expiresAt))
            """)
    }

    func takePending(keyDigest: String, now: Date) async throws -> PendingAuthorization? {
        // DELETE … RETURNING: of two callbacks with one state, on any instances, one gets the row.
        guard
            let row = try await database.query(
                """
                DELETE FROM pending_authorization WHERE key_digest = \(keyDigest)
                RETURNING key_digest, binding_digest, request, upstream_nonce, upstream_verifier, expires_at
                """
            ).first()
        else { return nil }
        let cells = row.makeRandomAccess()
        let pending = PendingAuthorization(
            keyDigest: try cells["key_digest"].decode(String.self),
            bindingDigest: try cells["binding_digest"].decode(String.self),
            request: try cells["request"].decode(ClientAuthorizationRequest.self),
            upstreamNonce: try cells["upstream_nonce"].decode(String.self),
            upstreamVerifier: try cells["upstream_verifier"].decode(SealedValue.self),
            expiresAt: try cells["expires_at"].decode(Date.self))
        return pending.expiresAt > now ? pending : nil
    }
}
