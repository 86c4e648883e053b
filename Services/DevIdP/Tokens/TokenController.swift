import Foundation
import Hummingbird
import JWTAuth
import NIOCore
import ServiceSupport

/// `POST /oauth/token`: the grants an Auth0 tenant offers: `authorization_code`, `refresh_token` (rotating),
/// `client_credentials`, `password`, and RFC 8693 token exchange (``TokenExchangeGrant``).
struct TokenController {
    let configuration: DevIdPConfiguration
    let clients: ClientRegistry
    let store: GrantStore
    let issuer: TokenIssuer

    static let realm = "DevIdP"

    func addRoutes(to router: Router<DevIdPRequestContext>) {
        router.post("oauth/token", use: token)
        router.post("oauth/revoke", use: revoke)
    }

    @Sendable func token(_ request: Request, context: DevIdPRequestContext) async throws -> Response {
        let parameters = try await TokenRequestBody.parameters(of: request)
        let client = try authenticate(request, parameters)
        let grantType = try parameters.required("grant_type")
        guard
            ["authorization_code", "refresh_token", "client_credentials", "password", GrantType.tokenExchange]
                .contains(grantType)
        else {
            throw ErrorResponse.unsupportedGrantType(grantType)
        }
        guard client.grantTypes.contains(grantType) else {
            throw ErrorResponse.unauthorizedClient("This application may not use the \(grantType) grant")
        }
        let response: TokenResponse =
            switch grantType {
            case "authorization_code": try await authorizationCode(parameters, client: client)
            case "refresh_token": try await refreshToken(parameters, client: client)
            case "client_credentials": try clientCredentials(parameters, client: client)
            case GrantType.tokenExchange:
                try await TokenExchangeGrant(configuration: configuration, issuer: issuer).exchange(
                    parameters, client: client)
            default: try await password(parameters, client: client)
            }
        return try JSONResponse.make(response)
    }

    /// `POST /oauth/revoke` (RFC 7009): revokes a refresh token and every token rotated from it. Unknown tokens are
    /// answered 200 too, so the endpoint reveals nothing.
    @Sendable func revoke(_ request: Request, context: DevIdPRequestContext) async throws -> Response {
        let parameters = try await TokenRequestBody.parameters(of: request)
        let client = try authenticate(request, parameters)
        await store.revoke(refreshToken: try parameters.required("token"), clientID: client.id)
        return Response(status: .ok, headers: [.cacheControl: "no-store"])
    }

    private func authenticate(_ request: Request, _ parameters: FormParameters) throws -> Client {
        let credentials = try ClientCredentials.read(from: request, parameters: parameters, realm: Self.realm)
        guard let client = clients.client(id: credentials.clientID) else {
            throw ErrorResponse.invalidClient("Unknown client", realm: Self.realm)
        }
        if let digest = client.secretDigest {
            guard let secret = credentials.secret, SecretDigest.matches(secret, digest: digest) else {
                throw ErrorResponse.invalidClient("Client authentication failed", realm: Self.realm)
            }
        } else if credentials.secret != nil {
            throw ErrorResponse.invalidClient("This is a public client: it has no secret", realm: Self.realm)
        }
        return client
    }

    private func authorizationCode(_ parameters: FormParameters, client: Client) async throws -> TokenResponse {
        let code = try parameters.required("code")
        let redirectURI = try parameters.single("redirect_uri")
        let verifier = try parameters.single("code_verifier")
        let entry: GrantStore.Code
        switch await store.redeem(code: code) {
        case .unknownOrExpired: throw ErrorResponse.invalidGrant("The authorization code is invalid or expired")
        case .replayed:
            throw ErrorResponse.invalidGrant(
                "The authorization code was already used; the tokens it produced are revoked")
        case .valid(let valid): entry = valid
        }
        guard entry.grant.clientID == client.id else {
            throw ErrorResponse.invalidGrant("The authorization code was issued to another client")
        }
        if entry.redirectURIWasSent || redirectURI != nil {
            guard redirectURI == entry.redirectURI else {
                throw ErrorResponse.invalidGrant("redirect_uri does not match the authorization request")
            }
        }
        switch (entry.codeChallenge, verifier) {
        case (let challenge?, let verifier?):
            guard PKCE.verify(verifier, challenge: challenge) else {
                throw ErrorResponse.invalidGrant("The code_verifier does not match the code_challenge")
            }
        case (.some, nil): throw ErrorResponse.invalidRequest("The parameter 'code_verifier' is missing")
        case (nil, .some):
            throw ErrorResponse.invalidGrant("code_verifier was sent, but the authorization used no PKCE")
        case (nil, nil): break
        }
        let (response, family) = try await userTokens(grant: entry.grant, client: client, grantType: nil)
        if let family { await store.recordFamily(family, forCode: code) }
        return response
    }

    private func refreshToken(_ parameters: FormParameters, client: Client) async throws -> TokenResponse {
        let token = try parameters.required("refresh_token")
        let entry: GrantStore.RefreshToken
        switch await store.useRefreshToken(
            token, clientID: client.id, reuseInterval: configuration.refreshReuseInterval)
        {
        case .invalid: throw ErrorResponse.invalidGrant("The refresh token is invalid, expired or revoked")
        case .reused: throw ErrorResponse.invalidGrant("The refresh token was already used; its family is revoked")
        case .valid(let valid): entry = valid
        }
        var narrowed: ScopeSet?
        if let requested = try parameters.single("scope").map(ScopeSet.init(spaceSeparated:)) {
            guard entry.grant.scope.isSuperset(of: requested) else {
                throw ErrorResponse.invalidScope("A refresh can only narrow the scope originally granted")
            }
            narrowed = requested
        }
        return try await userTokens(
            grant: entry.grant, client: client, grantType: nil, family: entry.family, narrowedTo: narrowed
        ).response
    }

    private func clientCredentials(_ parameters: FormParameters, client: Client) throws -> TokenResponse {
        let audience = try self.audience(parameters)
        let allowed = ScopeSet(configuration.apiPermissions)
        let scope = try parameters.single("scope").map(ScopeSet.init(spaceSeparated:)) ?? allowed
        guard allowed.isSuperset(of: scope) else {
            throw ErrorResponse.invalidScope("Allowed scopes for this API: \(allowed)")
        }
        let token = try issuer.machineToken(clientID: client.id, scope: scope, audience: audience)
        return TokenResponse(
            accessToken: token, expiresIn: Int(configuration.accessTokenLifetime), scope: scope.description)
    }

    private func password(_ parameters: FormParameters, client: Client) async throws -> TokenResponse {
        let username = try parameters.required("username")
        guard
            let user = configuration.users.authenticate(
                username: username, password: try parameters.required("password"))
        else {
            throw ErrorResponse(status: .forbidden, code: "invalid_grant", message: "Wrong email or password.")
        }
        let grant = GrantStore.Grant(
            clientID: client.id, userID: user.userID,
            scope: ScopeSet(spaceSeparated: try parameters.single("scope") ?? "openid profile email"),
            audience: try audience(parameters), nonce: nil, authTime: issuer.clock.now)
        return try await userTokens(grant: grant, client: client, grantType: "password").response
    }

    /// Access token, ID token when `openid` was granted, refresh token when `offline_access` was granted. A refresh
    /// may narrow the scope of the new access token; the rotated refresh token keeps the grant's scope
    /// (RFC 6749 §6).
    private func userTokens(
        grant: GrantStore.Grant, client: Client, grantType: String?, family: String? = nil,
        narrowedTo narrowed: ScopeSet? = nil
    ) async throws -> (response: TokenResponse, family: String?) {
        guard let user = configuration.users.user(id: grant.userID) else {
            throw ErrorResponse.invalidGrant("The user of this grant no longer exists")
        }
        let scope = issuer.grantedScope(requested: narrowed ?? grant.scope, user: user)
        var response = TokenResponse(
            accessToken: try issuer.accessToken(
                user: user, clientID: client.id, scope: scope, audience: grant.audience,
                grantType: grantType),
            expiresIn: Int(configuration.accessTokenLifetime), scope: scope.description)
        if scope.contains("openid") {
            response.idToken = try issuer.idToken(
                user: user, clientID: client.id, scope: scope, nonce: grant.nonce, authTime: grant.authTime)
        }
        var issuedFamily: String?
        let grantedScope = issuer.grantedScope(requested: grant.scope, user: user)
        if grantedScope.contains("offline_access"), client.grantTypes.contains("refresh_token") {
            let rotated = GrantStore.Grant(
                clientID: grant.clientID, userID: grant.userID, scope: grant.scope,
                audience: grant.audience, nonce: nil, authTime: grant.authTime)
            let issued = await store.issueRefreshToken(
                for: rotated, family: family, lifetime: configuration.refreshTokenLifetime)
            response.refreshToken = issued.token
            issuedFamily = issued.family
        }
        return (response, issuedFamily)
    }

    private func audience(_ parameters: FormParameters) throws -> String {
        try Self.audience(parameters, configuration: configuration)
    }

    /// The `audience` parameter (Auth0's name for the API a token is for), one of the tenant's APIs; the first by
    /// default.
    static func audience(_ parameters: FormParameters, configuration: DevIdPConfiguration) throws -> String {
        let audience = try parameters.single("audience") ?? configuration.audiences[0]
        guard configuration.audiences.contains(audience) else {
            throw ErrorResponse(status: .forbidden, code: "access_denied", message: "Service not found: \(audience)")
        }
        return audience
    }
}
