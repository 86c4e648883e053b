import Foundation
import JWTAuth
import ServiceSupport

/// RFC 8693 token exchange at `/oauth/token`, as Keycloak, Okta and Auth0's custom token exchange offer it: a client
/// presents a user's access token of this tenant (`subject_token`) and gets one for another of the tenant's APIs
/// (`audience`), with the scopes it asks for among those the presented token carries.
struct TokenExchangeGrant {
    static let grantType = "urn:ietf:params:oauth:grant-type:token-exchange"
    static let accessTokenType = "urn:ietf:params:oauth:token-type:access_token"

    let configuration: DevIdPConfiguration
    let issuer: TokenIssuer

    func exchange(_ parameters: FormParameters, client: Client) async throws -> TokenResponse {
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
}
