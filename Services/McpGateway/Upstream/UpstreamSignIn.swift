import Foundation
import HTTPTypes
import Hummingbird
import JWTAuth
import ServiceSupport

/// Sends the browser to the upstream provider for an approved authorization request.
///
/// The upstream `state` is an unguessable key under whose digest the pending sign-in is stored, with the OIDC nonce and
/// the PKCE verifier (encrypted). A second random value goes into a cookie and only its digest is stored: the callback
/// must come back to the browser that started the sign-in. Nothing secret travels through the browser.
struct UpstreamSignIn {
    static let cookieName = "gw_signin"

    let pendingSignIns: any PendingSignInStore
    let upstream: UpstreamProvider
    /// The tools' scopes: those a client asks for are asked of the provider too.
    let scopes: GatewayScopes
    let cipher: TokenCipher
    let cookies: CookieSigner
    let clock: any WallClock
    let random: any RandomSource

    func start(_ request: ClientAuthorizationRequest, extraCookies: [String] = []) async throws -> Response {
        let key = random.token()
        let binding = random.token()
        let nonce = random.token(byteCount: 16)
        let verifier = PKCE.makeVerifier(using: random)
        try await pendingSignIns.insert(
            pending: PendingAuthorization(
                keyDigest: SecretDigest.hex(key), bindingDigest: SecretDigest.hex(binding), request: request,
                upstreamNonce: nonce,
                upstreamVerifier: try cipher.seal(verifier, context: "pkce:" + SecretDigest.hex(key)),
                expiresAt: clock.now.addingTimeInterval(PendingAuthorization.lifetime)))
        // What the user signs in for: OIDC_SCOPE, plus the API scopes the MCP client asked for when the provider is the
        // one granting them (not with GRANTED_SCOPES).
        let scope =
            upstream.configuration.grantedScopes == nil
            ? upstream.configuration.scope.union(request.scope.intersection(scopes.api)) : upstream.configuration.scope
        let location = try await upstream.authorizationURL(
            state: key, nonce: nonce, codeChallenge: PKCE.challenge(for: verifier), scope: scope)
        var response = HTMLPage.redirect(to: location)
        let maxAge = Int(PendingAuthorization.lifetime)
        for cookie in extraCookies + [cookies.setCookie(Self.cookieName, value: binding, maxAge: maxAge)] {
            response.headers.append(HTTPField(name: .setCookie, value: cookie))
        }
        return response
    }
}
