import Hummingbird
import JWTAuth
import Logging
import ServiceSupport

/// `POST /revoke` (RFC 7009): a client revokes its own access or refresh token; revoking a refresh token revokes the
/// whole grant. Unknown tokens, and tokens of other clients, get the same 200 so the endpoint reveals nothing.
struct RevocationController {
    let accessTokens: any AccessTokenStore
    let refreshTokens: any RefreshTokenStore
    let grants: any GrantStore
    let authenticator: ClientAuthenticator
    let clock: any WallClock
    let audit: AuditLog

    func addRoutes(to router: some RouterMethods<GatewayRequestContext>) {
        router.post("revoke", use: revoke)
    }

    @Sendable func revoke(_ request: Request, context: GatewayRequestContext) async throws -> Response {
        let parameters = try await request.formParameters(limit: 16 * 1024)
        let client = try await authenticator.authenticate(request, parameters)
        let token = try parameters.required("token")
        let digest = SecretDigest.hex(token)
        if try await accessTokens.deleteAccessToken(digest: digest, clientID: client.id) {
            audit.record(
                .tokenRevoked, client: client.id, detail: ["oauth.token_type": "access_token"],
                requestID: context.requestID)
        } else if let grant = try await refreshTokens.grant(refreshDigest: digest), grant.clientID == client.id {
            try await grants.revokeGrant(id: grant.id, now: clock.now)
            audit.record(
                .tokenRevoked, user: grant.user?.subject, client: client.id, grant: grant.id,
                detail: ["oauth.token_type": "refresh_token"], requestID: context.requestID)
        }
        return Response(status: .ok, headers: [.cacheControl: "no-store"])
    }
}
