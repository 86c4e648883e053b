import HTTPTypes
import Hummingbird
import JSON
import JWTAuth
import ServiceSupport

/// Authenticates every request that passes through it and stores the caller in the context; scopes are checked by
/// each route.
///
/// - A bearer token (`Authorization: Bearer`), when the request has one and an issuer is configured: verified as an
///   access token of one of the trusted issuers (the provider, the MCP gateway); its scopes are its
///   `scope`/`permissions`. Failures answer 400/401/503 with an RFC 6750 challenge.
/// - Otherwise a Cloudflare Access assertion, when Access is configured: `Cf-Access-Jwt-Assertion` (added by Access
///   in front of TodosAPI), or `Cf-Access-Token` (a linked app token, presented by a client that holds an Access token
///   of its own when nothing sits in between). Its user has the configured `ACCESS_SCOPES`. An invalid assertion is a
///   403, as Access answers.
/// - A request with neither is a 401.
///
/// A bearer token wins over an assertion: behind Access, the assertion may be a service token's (the gateway getting
/// through Access) while the bearer token names the user the call is for.
struct CallerAuthMiddleware: RouterMiddleware {
    typealias Context = TodosRequestContext
    let bearer: TrustedIssuers?
    let access: (verifier: JWTVerifier, scopes: ScopeSet)?
    /// `GATEWAY_ISSUER`: its tokens name the issuer their subject belongs to (``TodoOwner``).
    var gatewayIssuer: String? = nil

    static let assertionHeader = HTTPField.Name(CloudflareAccess.assertionHeader)!
    static let linkedAppTokenHeader = HTTPField.Name(CloudflareAccess.linkedAppTokenHeader)!

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response)
        async throws -> Response
    {
        var context = context
        let assertion = request.headers[Self.assertionHeader] ?? request.headers[Self.linkedAppTokenHeader]
        if let bearer, request.headers[.authorization] != nil || access == nil || assertion == nil {
            let token: VerifiedToken
            do { token = try await bearer.verify(try request.bearerToken()) } catch {
                throw ErrorResponse(error, realm: TodosAPIConfiguration.realm)
            }
            // RFC 9449 §7.2: TodosAPI checks no DPoP proofs, so a token bound to a key is not taken as a bearer token.
            guard token.claims["cnf"] == nil else {
                throw ErrorResponse(
                    BearerAuthError.rejected("DPoP-bound access tokens (cnf) are not accepted here"),
                    realm: TodosAPIConfiguration.realm)
            }
            context.authenticate(token, scopes: token.scopes, owner: owner(of: token))
        } else if let access, let assertion {
            do {
                let token = try await access.verifier.verify(assertion)
                context.authenticate(
                    token, scopes: access.scopes,
                    owner: CloudflareAccess.principal(of: token).map { TodoOwner(issuer: token.issuer, subject: $0) })
            } catch .keysUnavailable {
                throw ErrorResponse(BearerAuthError.keysUnavailable, realm: TodosAPIConfiguration.realm)
            } catch {
                throw ErrorResponse(
                    status: .forbidden, code: "forbidden",
                    message: "The Cloudflare Access assertion is not valid: \(error.message)")
            }
        } else {
            throw ErrorResponse(
                status: .unauthorized, code: "unauthorized",
                message: "This API accepts Cloudflare Access assertions: the request has no Cf-Access-Jwt-Assertion")
        }
        return try await next(request, context)
    }

    /// The owner a bearer token names: its `sub` in its issuer's namespace, except for the gateway's tokens, whose
    /// `sub_id` (RFC 9493, format `iss_sub`) says which issuer the subject belongs to: the provider it signed the user
    /// in with, or the authorization server that authenticated the client.
    func owner(of token: VerifiedToken) -> TodoOwner? {
        guard let subject = token.subject else { return nil }
        if token.issuer == gatewayIssuer, let identifier = token.claims["sub_id"]?.objectValue,
            identifier["format"]?.stringValue == "iss_sub", identifier["sub"]?.stringValue == subject,
            let issuer = identifier["iss"]?.stringValue, !issuer.isEmpty
        {
            return TodoOwner(issuer: issuer, subject: subject)
        }
        return TodoOwner(issuer: token.issuer, subject: subject)
    }
}
