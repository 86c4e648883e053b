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
    let random: any RandomSource

    /// The scope a client gets (RFC 6749 §3.3): what it asked for within what it may have (all it may have when it
    /// asks for nothing). `offline_access` means nothing here, as no refresh token is issued. Refused only when
    /// nothing is left: clients ask for what a 401 challenge named, which may be more than they may have.
    static func scope(requested: String?, allowed: ScopeSet) throws -> ScopeSet {
        let allowed = allowed.subtracting(["offline_access"])
        let scope = requested.map { ScopeSet(spaceSeparated: $0).intersection(allowed) } ?? allowed
        guard !scope.isEmpty else {
            throw ErrorResponse.invalidScope(
                "This client may be granted \(allowed.isEmpty ? "no scope" : allowed.description), not \(requested ?? "")"
            )
        }
        return scope
    }

    /// `binding`: the thumbprint of the DPoP key the token is bound to, if the request proved one.
    func issue(user: UserProfile?, client: RegisteredClient, scope: ScopeSet, binding: String?, now: Date)
        async throws -> TokenResponse
    {
        let access = GatewayTokenFormat.newAccessToken(from: random)
        let expiresAt = now.addingTimeInterval(accessTokenLifetime)
        let grant = Grant(
            id: GatewayTokenFormat.newGrantID(from: random), clientID: client.id, user: user, scope: scope, resource: resource,
            upstream: nil, createdAt: now, expiresAt: expiresAt)
        let record = AccessTokenRecord(
            digest: SecretDigest.hex(access), grantID: grant.id, clientID: client.id, scope: scope,
            resource: resource, expiresAt: expiresAt, dpopJKT: binding)
        try await grants.insert(grant: grant, issuing: IssuedTokens(access: record, refreshDigest: nil))
        var response = TokenResponse(accessToken: access, expiresIn: Int(accessTokenLifetime), scope: scope.description)
        if binding != nil { response.tokenType = "DPoP" }
        return response
    }
}
