import Foundation
import JWTAuth
import ServiceSupport

/// Issues the access token of a grant that starts at `/token` itself, with no authorization code and no refresh token:
/// a machine client's (client credentials) or an identity assertion's (jwt-bearer). The grant lasts as long as its
/// token; the client asks again when it expires.
struct GrantWithoutCode: Sendable {
    let grants: any GrantStore
    let accessTokenLifetime: TimeInterval
    let resource: String

    /// The scope a client gets: what it asked for (or, if nothing, all it may have), which must lie within `allowed`.
    static func scope(requested: String?, allowed: ScopeSet) throws -> ScopeSet {
        guard let requested else { return allowed }
        let scope = ScopeSet(spaceSeparated: requested)
        guard !scope.isEmpty, allowed.isSuperset(of: scope) else {
            throw ErrorResponse.invalidScope(
                "This client may be granted \(allowed.isEmpty ? "no scope" : allowed.description), not \(requested)")
        }
        return scope
    }

    func issue(user: UserProfile?, client: RegisteredClient, scope: ScopeSet, now: Date) async throws -> TokenResponse {
        let access = GatewayTokenFormat.newAccessToken()
        let expiresAt = now.addingTimeInterval(accessTokenLifetime)
        let grant = Grant(
            id: GatewayTokenFormat.newGrantID(), clientID: client.id, user: user, scope: scope, resource: resource,
            upstream: nil, createdAt: now, expiresAt: expiresAt)
        let record = AccessTokenRecord(
            digest: SecretDigest.hex(access), grantID: grant.id, clientID: client.id, scope: scope,
            resource: resource, expiresAt: expiresAt)
        try await grants.insert(grant: grant, issuing: IssuedTokens(access: record, refreshDigest: nil))
        return TokenResponse(accessToken: access, expiresIn: Int(accessTokenLifetime), scope: scope.description)
    }
}
