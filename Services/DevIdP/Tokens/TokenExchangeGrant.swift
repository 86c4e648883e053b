import Foundation
import JSON
import JWTAuth
import ServiceSupport

/// RFC 8693 token exchange at `/oauth/token`, two ways:
/// - a user's access token of this tenant (`subject_token`) for one of another of the tenant's APIs (`audience`), with
///   the scopes asked for among those the presented token carries (as Keycloak and Okta offer it);
/// - a user's ID token, issued to the requesting client, for an Identity Assertion JWT Authorization Grant (ID-JAG)
///   to an MCP authorization server (`audience`, one of `DEVIDP_ID_JAG_AUDIENCES`) for one `resource`: what an
///   enterprise's identity provider gives an AI agent under MCP's enterprise-managed authorization
///   (``identityAssertion(_:client:)``).
struct TokenExchangeGrant {
    static let accessTokenType = "urn:ietf:params:oauth:token-type:access_token"
    static let idTokenType = "urn:ietf:params:oauth:token-type:id_token"
    static let identityAssertionType = "urn:ietf:params:oauth:token-type:id-jag"
    /// How long an identity assertion is valid: minutes, it is used once at once.
    static let identityAssertionLifetime: TimeInterval = 300

    let configuration: DevIdPConfiguration
    let issuer: TokenIssuer

    func exchange(_ parameters: FormParameters, client: Client) async throws -> TokenResponse {
        if try parameters.single("requested_token_type") == Self.identityAssertionType {
            return try await identityAssertion(parameters, client: client)
        }
        let subjectToken = try parameters.required("subject_token")
        guard try parameters.required("subject_token_type") == Self.accessTokenType else {
            throw ErrorResponse.invalidRequest("subject_token_type must be \(Self.accessTokenType)")
        }
        if let requested = try parameters.single("requested_token_type"), requested != Self.accessTokenType {
            throw ErrorResponse.invalidRequest("Only access tokens are issued (requested_token_type)")
        }
        guard try parameters.single("actor_token") == nil else {
            throw ErrorResponse.invalidRequest("Delegation (actor_token) is not supported")
        }
        let verifier = JWTVerifier(
            configuration: .init(
                issuer: configuration.issuer, audiences: Set(configuration.audiences), cacheCapacity: 0),
            keys: KeySet([try await issuer.signingKey.verificationKey()]), clock: issuer.clock)
        let subject: VerifiedToken
        do { subject = try await verifier.verify(subjectToken) } catch {
            throw ErrorResponse.invalidGrant(
                "The subject_token is not a valid access token of this tenant: \(error.message)")
        }
        guard let userID = subject.subject, let user = configuration.users.user(id: userID) else {
            throw ErrorResponse.invalidGrant("The subject_token is not a user's token")
        }
        let audience = try TokenController.audience(parameters, configuration: configuration)
        // The scopes the subject token was granted (its `scope`; Auth0's `permissions` lists all the user may have).
        let held = ScopeSet(spaceSeparated: subject.string("scope") ?? "").intersection(
            ScopeSet(configuration.apiPermissions))
        let scope = try parameters.single("scope").map(ScopeSet.init(spaceSeparated:)) ?? held
        guard held.isSuperset(of: scope) else {
            throw ErrorResponse.invalidScope("An exchange can only keep scopes the subject_token carries: \(held)")
        }
        var response = TokenResponse(
            accessToken: try issuer.accessToken(
                user: user, clientID: client.id, scope: issuer.grantedScope(requested: scope, user: user),
                audience: audience, grantType: "token-exchange", narrowed: true),
            expiresIn: Int(configuration.accessTokenLifetime), scope: scope.description)
        response.issuedTokenType = Self.accessTokenType
        return response
    }

    /// An ID-JAG for the user of an ID token DevIdP issued to `client`: `typ: oauth-id-jag+jwt`, `aud` the MCP
    /// authorization server, `client_id` the requesting client, `resource`, `jti`, five minutes.
    func identityAssertion(_ parameters: FormParameters, client: Client) async throws -> TokenResponse {
        let subjectToken = try parameters.required("subject_token")
        guard try parameters.required("subject_token_type") == Self.idTokenType else {
            throw ErrorResponse.invalidRequest("An identity assertion is issued for an ID token (subject_token_type)")
        }
        let audience = try parameters.required("audience")
        guard configuration.identityAssertionAudiences.contains(audience) else {
            throw ErrorResponse.invalidTarget(
                "DevIdP issues identity assertions only for \(configuration.identityAssertionAudiences)")
        }
        let resource = try parameters.required("resource")
        let verifier = JWTVerifier(
            configuration: .init(
                issuer: configuration.issuer, audiences: [client.id], cacheCapacity: 0,
                acceptedTypes: JWTVerifier.idTokenTypes),
            keys: KeySet([try await issuer.signingKey.verificationKey()]), clock: issuer.clock)
        let idToken: VerifiedToken
        do { idToken = try await verifier.verify(subjectToken) } catch {
            throw ErrorResponse.invalidGrant(
                "The subject_token is not an ID token this tenant issued to this client: \(error.message)")
        }
        guard let userID = idToken.subject, let user = configuration.users.user(id: userID) else {
            throw ErrorResponse.invalidGrant("The subject_token names no user of this tenant")
        }
        // The scope claim is always there: what was asked for, within the user's permissions (all of them when
        // nothing was asked for); an MCP server grants no more.
        let permissions = ScopeSet(user.permissions)
        let scope =
            try parameters.single("scope").map { ScopeSet(spaceSeparated: $0).intersection(permissions) }
            ?? permissions
        let now = issuer.clock.now
        let claims: [String: JSONValue] = [
            "iss": .string(configuration.issuer), "sub": .string(user.userID), "aud": .string(audience),
            "client_id": .string(client.id), "resource": .string(resource),
            "jti": .string(issuer.random.token(byteCount: 16)), "iat": .integer(Int64(now.timeIntervalSince1970)),
            "exp": .integer(Int64(now.addingTimeInterval(Self.identityAssertionLifetime).timeIntervalSince1970)),
            "email": .string(user.email), "name": .string(user.name),
            "auth_time": .integer(Int64(idToken.claims["auth_time"]?.doubleValue ?? now.timeIntervalSince1970)),
            "scope": .string(scope.description),
        ]
        var response = TokenResponse(
            accessToken: try issuer.signingKey.sign(claims, type: "oauth-id-jag+jwt"),
            expiresIn: Int(Self.identityAssertionLifetime), scope: scope.description)
        response.tokenType = "N_A"
        response.issuedTokenType = Self.identityAssertionType
        return response
    }
}
