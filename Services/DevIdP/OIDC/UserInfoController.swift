import Hummingbird
import JSON
import JWTAuth
import ServiceSupport

/// `GET /userinfo` (OpenID Connect Core §5.3): the signed-in user's claims, for access tokens whose audience
/// includes the userinfo URL (tokens requested with `openid`).
struct UserInfoController {
    let configuration: DevIdPConfiguration
    let verifier: JWTVerifier

    func addRoutes(to router: Router<DevIdPRequestContext>) {
        router.get("userinfo", use: userinfo)
        router.post("userinfo", use: userinfo)
    }

    @Sendable func userinfo(_ request: Request, context: DevIdPRequestContext) async throws -> Response {
        let token: VerifiedToken
        do {
            token = try await verifier.verify(try request.bearerToken())
        } catch {
            throw ErrorResponse(error, realm: "userinfo")
        }
        guard let subject = token.subject, let user = configuration.users.user(id: subject) else {
            throw ErrorResponse(BearerAuthError.rejected("The token's user does not exist"), realm: "userinfo")
        }
        var claims = TokenIssuer.profileClaims(user: user, scope: token.scopes)
        claims["sub"] = .string(user.userID)
        return try JSONResponse.make(claims)
    }
}
