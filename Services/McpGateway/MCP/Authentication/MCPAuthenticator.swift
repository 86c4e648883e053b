import Foundation
import HTTPTypes
import Hummingbird
import JWTAuth
import ServiceSupport

/// Authenticates a request to `/mcp` (or the legacy SSE endpoints) in one of the ``AuthMode``s; throws an
/// ``ErrorResponse`` with the right status and challenge otherwise.
protocol MCPAuthenticator: Sendable {
    /// The caller of `request`; `challenge` renders the 401s of the endpoint that was called.
    func authenticate(_ request: Request, challenge: MCPBearerChallenge) async throws -> MCPCaller
}

/// `AUTH_MODE=gateway`: the gateway's own opaque access tokens, looked up by digest, bound to the MCP resource; a
/// token bound to a DPoP key only with `Authorization: DPoP` and a proof of that key for this request (RFC 9449 §7).
struct GatewayTokenAuthenticator: MCPAuthenticator {
    let address: GatewayAddress
    let accessTokens: any AccessTokenStore
    let tokens: UpstreamTokenService
    let downstream: GrantDownstreamCredentials
    let dpop: DPoPChecker
    let clock: any WallClock

    func authenticate(_ request: Request, challenge: MCPBearerChallenge) async throws -> MCPCaller {
        let (token, dpopScheme) = try challenge.credentials(of: request)
        guard token.hasPrefix(GatewayTokenFormat.accessTokenPrefix),
            let found = try await accessTokens.accessToken(digest: SecretDigest.hex(token), now: clock.now)
        else {
            throw challenge.error(BearerAuthError.rejected("The access token is invalid, expired or revoked"))
        }
        let (record, grant) = (found.token, found.grant)
        guard GatewayAddress.sameResource(record.resource, address.resource) else {
            throw challenge.error(BearerAuthError.invalidAudience)
        }
        if let bound = record.dpopJKT {
            guard dpopScheme else {
                throw challenge.error(
                    BearerAuthError.rejected(
                        "This access token is bound to a DPoP key: send it as 'Authorization: DPoP <token>' with a"
                            + " DPoP proof"))
            }
            let proof: DPoPProof?
            do {
                proof = try await dpop.proof(
                    of: request, url: address.publicURL + request.uri.path, accessToken: token)
            } catch {
                if case .unavailable(let reason) = error { throw reason }
                throw dpop.resourceError(error)
            }
            guard let proof else { throw dpop.resourceError(.invalid("The request has no DPoP proof")) }
            guard proof.thumbprint == bound else {
                throw dpop.resourceError(.invalid("The DPoP proof is signed by another key than the token's"))
            }
        } else if dpopScheme {
            throw challenge.error(
                BearerAuthError.rejected("This access token is not bound to a DPoP key: send it as a Bearer token"))
        }
        let identity =
            grant.user.map {
                CallerIdentity(
                    subject: $0.subject, name: $0.name, email: $0.email, clientID: grant.clientID,
                    groups: $0.groups ?? [], roles: $0.roles ?? [], assertedBy: $0.assertedBy)
            } ?? .machine(clientID: grant.clientID)
        return MCPCaller(
            identity: identity, scope: record.scope,
            credentials: downstream.credentials(for: grant, scope: record.scope, tokens: tokens))
    }
}

/// `AUTH_MODE=external`: JWT access tokens of another authorization server whose audience is the MCP resource. The
/// tools reach TodosAPI with tokens the gateway mints: the client's token is for the gateway, not for the API.
struct ExternalTokenAuthenticator: MCPAuthenticator {
    let verifier: JWTVerifier
    let minter: DownstreamTokenMinter
    var claimNames = IdentityClaimNames()

    func authenticate(_ request: Request, challenge: MCPBearerChallenge) async throws -> MCPCaller {
        let token = try challenge.token(of: request)
        let verified: VerifiedToken
        do { verified = try await verifier.verify(token) } catch {
            throw challenge.error(error)
        }
        // RFC 9449 §7.2: a DPoP-bound token accepted as a bearer token would defeat the binding; this mode cannot
        // check the proof, so such a token is refused.
        guard verified.claims["cnf"] == nil else {
            throw challenge.error(
                BearerAuthError.rejected("This access token is bound to a key (cnf), which this gateway cannot check"))
        }
        let identity = CallerIdentity(
            subject: verified.subject ?? "",
            name: verified.displayString("name") ?? verified.displayString("preferred_username"),
            email: verified.displayString("email"), clientID: verified.string("azp") ?? verified.string("client_id"),
            groups: claimNames.groups(in: verified.claims), roles: claimNames.roles(in: verified.claims))
        return MCPCaller(
            identity: identity, scope: verified.scopes,
            credentials: MintedCredential(minter: minter, principal: identity.principal, granted: verified.scopes))
    }
}

/// `AUTH_MODE=access`: the `Cf-Access-Jwt-Assertion` Cloudflare Access adds to every request it lets through,
/// verified against the team's certificates, issuer and the application's AUD. Missing → 401, invalid → 403. The
/// tools reach TodosAPI with tokens the gateway mints, with the `ACCESS_SCOPES` the user has.
struct AccessAssertionAuthenticator: MCPAuthenticator {
    static let header = HTTPField.Name(CloudflareAccess.assertionHeader)!
    let settings: CloudflareAccessSettings
    let verifier: JWTVerifier
    let minter: DownstreamTokenMinter
    var claimNames = IdentityClaimNames()

    func authenticate(_ request: Request, challenge: MCPBearerChallenge) async throws -> MCPCaller {
        guard let assertion = request.headers[Self.header], !assertion.isEmpty else {
            throw ErrorResponse(
                status: .unauthorized, code: "unauthorized",
                message: "This gateway runs behind Cloudflare Access: the request has no Cf-Access-Jwt-Assertion")
        }
        let verified: VerifiedToken
        do { verified = try await verifier.verify(assertion) } catch {
            if error == .keysUnavailable {
                throw ErrorResponse(
                    status: .serviceUnavailable, code: "temporarily_unavailable",
                    message:
                        "Cloudflare Access's signing keys could not be fetched from \(settings.certsURL); retry later")
            }
            throw ErrorResponse(
                status: .forbidden, code: "forbidden",
                message: "The Cloudflare Access assertion is not valid: \(error.message)")
        }
        guard let subject = CloudflareAccess.principal(of: verified) else {
            throw ErrorResponse(status: .forbidden, code: "forbidden", message: "The Access assertion names no user")
        }
        let identity = CallerIdentity(
            subject: subject, name: verified.displayString("name"), email: verified.displayString("email"),
            clientID: verified.string("common_name"), groups: claimNames.groups(in: verified.claims),
            roles: claimNames.roles(in: verified.claims))
        return MCPCaller(
            identity: identity, scope: settings.scopes ?? [],
            credentials: MintedCredential(minter: minter, principal: identity.principal, granted: settings.scopes ?? []))
    }
}

/// The bearer-token rules every OAuth mode of the MCP endpoints shares: the token only in the `Authorization` header,
/// and 401 challenges that point MCP clients at the endpoint's protected resource metadata (RFC 9728).
struct MCPBearerChallenge: Sendable {
    /// `<PUBLIC_URL>/.well-known/oauth-protected-resource/mcp` (or `/sse` for the legacy transport's endpoints).
    let resourceMetadataURL: String
    /// The scopes a 401 challenge names (MCP: what a client should ask for), those of the tools.
    let scope: ScopeSet

    /// The access token of `Authorization: Bearer <token>` or (RFC 9449 §7.1) `Authorization: DPoP <token>`, and
    /// whether it came with the DPoP scheme.
    func credentials(of request: Request) throws -> (token: String, dpop: Bool) {
        try refuseTokenInQuery(request)
        let values = request.headers[values: .authorization]
        if values.count == 1, let value = values.first, value.count > 5, value.prefix(5).lowercased() == "dpop " {
            do {
                return (try BearerCredentials.token(fromAuthorization: "Bearer " + value.dropFirst(5)), true)
            } catch { throw self.error(error) }
        }
        return (try token(of: request), false)
    }

    func token(of request: Request) throws -> String {
        try refuseTokenInQuery(request)
        do { return try request.bearerToken() } catch { throw self.error(error) }
    }

    private func refuseTokenInQuery(_ request: Request) throws {
        // On the raw query, so that a value the form decoder refuses cannot hide the parameter.
        if let query = request.uri.query,
            query.split(separator: "&").contains(where: { $0.lowercased().hasPrefix("access_token") })
        {
            throw error(
                BearerAuthError.malformedAuthorization.with(
                    message: "Access tokens in the query string are refused: send 'Authorization: Bearer <token>'"))
        }
    }

    func error(_ error: BearerAuthError) -> ErrorResponse {
        ErrorResponse(error, scope: scope, resourceMetadata: resourceMetadataURL)
    }
}
