import Foundation
import JSON
import JWTAuth
import ServiceSupport

/// Mints the tokens an Auth0 tenant would: RS256 access tokens for an API, ID tokens for the client.
struct TokenIssuer: Sendable {
    let configuration: DevIdPConfiguration
    let signingKey: RSASigningKey
    let clock: any WallClock
    /// Where `jti`s come from.
    var random: any RandomSource = SystemRandomSource()

    /// The scopes a user's token carries: what was asked for, limited to the OIDC scopes and the user's permissions
    /// (Auth0 with RBAC enabled).
    func grantedScope(requested: ScopeSet, user: DemoUser) -> ScopeSet {
        requested.intersection(ScopeSet(DevIdPConfiguration.oidcScopes + user.permissions))
    }

    /// An access token for `user`. With `openid` it is also good for `/userinfo`, so `aud` is an array, as Auth0 does.
    /// `permissions` lists the user's API permissions (Auth0 RBAC), unless `narrowed` (an exchange) keeps fewer.
    func accessToken(
        user: DemoUser, clientID: String, scope: ScopeSet, audience: String, grantType: String?,
        narrowed: Bool = false
    ) throws -> String {
        let permissions = user.permissions.filter(configuration.apiPermissions.contains).filter {
            !narrowed || scope.contains($0)
        }
        let now = clock.now
        var claims: [String: JSONValue] = [
            "iss": .string(configuration.issuer), "sub": .string(user.userID), "azp": .string(clientID),
            "iat": .integer(Int64(now.timeIntervalSince1970)),
            "exp": .integer(Int64(now.addingTimeInterval(configuration.accessTokenLifetime).timeIntervalSince1970)),
            "scope": .string(scope.description),
            "permissions": .array(permissions.map(JSONValue.string)),
        ]
        claims["aud"] =
            scope.contains("openid")
            ? [.string(audience), .string(configuration.userinfoAudience)] : .string(audience)
        if let grantType { claims["gty"] = .string(grantType) }
        return try signingKey.sign(claims)
    }

    /// An access token for a machine client (client credentials): `sub` is `<client_id>@clients`.
    func machineToken(clientID: String, scope: ScopeSet, audience: String) throws -> String {
        let now = clock.now
        return try signingKey.sign([
            "iss": .string(configuration.issuer), "sub": .string("\(clientID)@clients"), "aud": .string(audience),
            "azp": .string(clientID), "gty": "client-credentials", "iat": .integer(Int64(now.timeIntervalSince1970)),
            "exp": .integer(Int64(now.addingTimeInterval(configuration.accessTokenLifetime).timeIntervalSince1970)),
            "scope": .string(scope.description), "permissions": .array(scope.sorted.map(JSONValue.string)),
        ])
    }

    /// An ID token for `user`, audience the client, with the profile and email claims their scopes allow.
    func idToken(user: DemoUser, clientID: String, scope: ScopeSet, nonce: String?, authTime: Date) throws -> String {
        let now = clock.now
        var claims: [String: JSONValue] = [
            "iss": .string(configuration.issuer), "sub": .string(user.userID), "aud": .string(clientID),
            "iat": .integer(Int64(now.timeIntervalSince1970)),
            "exp": .integer(Int64(now.addingTimeInterval(configuration.idTokenLifetime).timeIntervalSince1970)),
            "auth_time": .integer(Int64(authTime.timeIntervalSince1970)),
        ]
        if let nonce { claims["nonce"] = .string(nonce) }
        claims.merge(Self.profileClaims(user: user, scope: scope)) { _, new in new }
        return try signingKey.sign(claims)
    }

    /// The claims `/userinfo` and ID tokens show for these scopes.
    static func profileClaims(user: DemoUser, scope: ScopeSet) -> [String: JSONValue] {
        var claims: [String: JSONValue] = [:]
        if scope.contains("profile") {
            claims["name"] = .string(user.name)
            claims["nickname"] = .string(user.username)
        }
        if scope.contains("email") {
            claims["email"] = .string(user.email)
            claims["email_verified"] = true
        }
        return claims
    }
}
