import Foundation
import Hummingbird
import JWTAuth
import Logging
import ServiceSupport

/// `POST /token`: exchanges authorization codes (PKCE S256), rotates refresh tokens, and issues tokens to machine
/// clients (`client_credentials`) and for identity assertions (``JWTBearerGrant``). Form-encoded only; errors are
/// RFC 6749 JSON with `Cache-Control: no-store`.
struct TokenController {
    let address: GatewayAddress
    let settings: AuthorizationServerSettings
    let codes: any AuthorizationCodeStore
    let grants: any GrantStore
    let refreshTokens: any RefreshTokenStore
    let clients: ClientDirectory
    /// How clients authenticate (secrets, `private_key_jwt`).
    let authenticator: ClientAuthenticator
    /// Present when `IDENTITY_ASSERTION_ISSUERS` names trusted enterprise providers.
    let identityAssertions: JWTBearerGrant?
    /// DPoP proofs: a request with one gets tokens bound to its key (RFC 9449 §5).
    let dpop: DPoPChecker
    let clock: any WallClock
    let random: any RandomSource
    let audit: AuditLog

    static let grantTypes = ["authorization_code", "refresh_token", "client_credentials", GrantType.jwtBearer]

    func addRoutes(to router: some RouterMethods<GatewayRequestContext>) {
        router.post("token", use: token)
    }

    @Sendable func token(_ request: Request, context: GatewayRequestContext) async throws -> Response {
        let parameters = try await request.formParameters(limit: 16 * 1024)
        // The grant type as asked, for the metrics (any unknown value counts as "other").
        let asked = (try? parameters.single("grant_type")) ?? nil
        do {
            let response = try await answer(parameters, request: request, context: context)
            GatewayMetrics.tokenRequest(grantType: asked ?? "none", outcome: "issued")
            return response
        } catch {
            GatewayMetrics.tokenRequest(
                grantType: asked ?? "none", outcome: (error as? ErrorResponse)?.code ?? "server_error")
            throw error
        }
    }

    private func answer(_ parameters: FormParameters, request: Request, context: GatewayRequestContext) async throws
        -> Response
    {
        // The proof first: a request refused for its proof (or its nonce) spends no client assertion, so that the
        // client can retry it as it is.
        let proof: DPoPProof?
        do { proof = try await dpop.proof(of: request, url: address.publicURL + "/token") } catch {
            // The database did not answer: a 503, logged with what failed (ErrorRenderingMiddleware).
            if case .unavailable(let reason) = error { throw reason }
            throw dpop.tokenEndpointError(error)
        }
        let binding = proof?.thumbprint
        let client = try await authenticator.authenticate(request, parameters)
        let grantType = try parameters.required("grant_type")
        guard Self.grantTypes.contains(grantType),
            grantType != GrantType.jwtBearer || identityAssertions != nil
        else {
            throw ErrorResponse.unsupportedGrantType(grantType)
        }
        guard client.grantTypes.contains(grantType) else {
            throw ErrorResponse.unauthorizedClient("This client did not register the \(grantType) grant")
        }
        // RFC 8707 §2: `resource` may be repeated; every value must be a resource of this server.
        let resources = parameters.pairs.filter { $0.name == "resource" && !$0.value.isEmpty }.map(\.value)
        if resources.contains(where: { !address.isOwnResource($0) }) {
            throw ErrorResponse.invalidTarget(
                "This server only issues tokens for the resource \(address.resource)")
        }
        let response: TokenResponse
        switch grantType {
        case "authorization_code":
            response = try await redeemCode(parameters, client: client, binding: binding, context: context)
        case "refresh_token":
            response = try await refresh(parameters, client: client, binding: binding, context: context)
        case "client_credentials":
            // RFC 6749 §4.4: a token for the client itself, within the scope the operator allowed it.
            response = try await issuing.issue(
                user: nil, client: client,
                scope: try GrantWithoutCode.scope(
                    requested: try parameters.single("scope"), allowed: client.scope ?? []),
                binding: binding, now: clock.now)
        default:
            guard let identityAssertions else { throw ErrorResponse.unsupportedGrantType(grantType) }
            response = try await identityAssertions.issue(
                parameters, client: client, binding: binding, now: clock.now)
        }
        if grantType == "client_credentials" || grantType == GrantType.jwtBearer {
            // No consent page saw these: each is an audit line.
            audit.record(
                .tokenIssuedWithoutSignIn, client: client.id,
                detail: ["oauth.grant_type": "\(grantType)", "oauth.scope": "\(response.scope)"],
                requestID: context.requestID)
        }
        var answer = try JSONResponse.make(response)
        if proof != nil { answer.headers.append(contentsOf: dpop.nonceHeader()) }
        return answer
    }

    var issuing: GrantWithoutCode {
        GrantWithoutCode(
            grants: grants, accessTokenLifetime: settings.accessTokenLifetime, resource: address.resource,
            random: random)
    }

    private func redeemCode(
        _ parameters: FormParameters, client: RegisteredClient, binding: String?, context: GatewayRequestContext
    ) async throws -> TokenResponse {
        let code = try parameters.required("code")
        let verifier = try parameters.required("code_verifier")
        let redirectURI = try parameters.single("redirect_uri")
        let now = clock.now
        let digest = SecretDigest.hex(code)
        guard let record = try await codes.code(digest: digest), record.clientID == client.id else {
            throw ErrorResponse.invalidGrant("The authorization code is invalid")
        }
        guard record.redeemedAt == nil else {
            // RFC 6749 §4.1.2: a code used twice revokes what it produced.
            try await grants.revokeGrant(id: record.grantID, now: now)
            GatewayMetrics.codeReplay()
            audit.record(
                .codeReplayed, client: client.id, grant: record.grantID, requestID: context.requestID)
            throw ErrorResponse.invalidGrant(
                "The authorization code was already used; the tokens it produced are revoked")
        }
        guard record.expiresAt > now else { throw ErrorResponse.invalidGrant("The authorization code expired") }
        if redirectURI == nil, record.redirectURIRequired {
            throw ErrorResponse.invalidGrant(
                "redirect_uri is missing: the authorization request included it, so the token request must repeat it")
        }
        if let redirectURI, redirectURI != record.redirectURI {
            throw ErrorResponse.invalidGrant("redirect_uri does not match the authorization request")
        }
        guard PKCE.verify(verifier, challenge: record.codeChallenge) else {
            throw ErrorResponse.invalidGrant("The code_verifier does not match the code_challenge")
        }
        guard let grant = try await grants.grant(id: record.grantID), grant.isActive(at: now) else {
            throw ErrorResponse.invalidGrant("The authorization was revoked")
        }
        // RFC 9449 §10: a code whose request named a DPoP key is redeemed with a proof of that key only.
        if let bound = grant.dpopJKT, binding != bound {
            throw ErrorResponse(
                status: .badRequest, code: "invalid_dpop_proof",
                message: "The authorization request named a DPoP key (dpop_jkt): send a DPoP proof signed with it",
                headers: dpop.nonceHeader())
        }
        var (tokens, access, refresh) = issue(
            grant: GrantSummary(grant), client: client, scope: grant.scope, binding: binding, now: now)
        // RFC 9449 §5: the refresh tokens of a public client are bound to the key it proved.
        if client.isPublic, tokens.refreshDigest != nil { tokens.refreshBinding = grant.dpopJKT ?? binding }
        switch try await codes.redeem(codeDigest: digest, issuing: tokens, now: now) {
        case .redeemed:
            context.logger.info(
                "Tokens issued",
                metadata: ["oauth.client_id": "\(client.id)", "oauth.grant_type": "authorization_code"])
            return response(access: access, refresh: refresh, scope: grant.scope, bound: binding != nil)
        case .replayed:
            GatewayMetrics.codeReplay()
            audit.record(
                .codeReplayed, user: grant.user?.subject, client: client.id, grant: grant.id,
                requestID: context.requestID)
            throw ErrorResponse.invalidGrant(
                "The authorization code was already used; the tokens it produced are revoked")
        case .unknown:
            throw ErrorResponse.invalidGrant("The authorization code is invalid")
        }
    }

    private func refresh(
        _ parameters: FormParameters, client: RegisteredClient, binding: String?, context: GatewayRequestContext
    ) async throws -> TokenResponse {
        let presented = try parameters.required("refresh_token")
        let now = clock.now
        let digest = SecretDigest.hex(presented)
        guard let grant = try await refreshTokens.grant(refreshDigest: digest), grant.clientID == client.id else {
            throw ErrorResponse.invalidGrant("The refresh token is invalid")
        }
        guard grant.isActive(at: now) else {
            throw ErrorResponse.invalidGrant("The refresh token was revoked or expired")
        }
        // A superseded refresh token is a replay whatever proof comes with it: the rotation below revokes the grant.
        // Only a token still in use is held to the grant's DPoP key.
        let rule = RefreshRotationRule.decide(presented: digest, grant: grant, now: now)
        if rule != .revoke, let bound = grant.dpopJKT, binding != bound {
            throw ErrorResponse(
                status: .badRequest, code: "invalid_dpop_proof",
                message: "This refresh token is bound to a DPoP key: send a DPoP proof signed with it",
                headers: dpop.nonceHeader())
        }
        var scope = grant.scope
        if let requested = try parameters.single("scope").map(ScopeSet.init(spaceSeparated:)) {
            guard grant.scope.isSuperset(of: requested) else {
                throw ErrorResponse.invalidScope(
                    "A refresh can narrow the granted scope (\(grant.scope)), not widen it")
            }
            scope = requested
        }
        let (tokens, access, refresh) = issue(
            grant: grant, client: client, scope: scope, binding: binding, now: now, forceRefresh: true)
        let graceUntil = now.addingTimeInterval(settings.refreshTokenReuseInterval)
        switch try await refreshTokens.rotate(
            refreshDigest: digest, grantID: grant.id, issuing: tokens, now: now, graceUntil: graceUntil)
        {
        case .rotated:
            // A public client that proves a key for the first time, with its newest refresh token, binds its refresh
            // tokens from now on: the new one, as long as it is still the grant's newest.
            if client.isPublic, grant.dpopJKT == nil, rule == .rotateCurrent, let binding,
                let newDigest = tokens.refreshDigest
            {
                try await grants.bindRefreshTokens(
                    grantID: grant.id, currentRefreshDigest: newDigest, dpopJKT: binding)
            }
            return response(access: access, refresh: refresh, scope: scope, bound: binding != nil)
        case .reused:
            // An older token, or the previous one after its grace: the grant is revoked.
            GatewayMetrics.refreshReuse()
            audit.record(
                .refreshTokenReused, user: grant.user?.subject, client: client.id, grant: grant.id,
                requestID: context.requestID)
            throw ErrorResponse.invalidGrant("The refresh token was already used; the authorization is revoked")
        case .inactive:
            throw ErrorResponse.invalidGrant("The refresh token was revoked or expired")
        }
    }

    private func issue(
        grant: GrantSummary, client: RegisteredClient, scope: ScopeSet, binding: String?, now: Date,
        forceRefresh: Bool = false
    )
        -> (IssuedTokens, access: String, refresh: String?)
    {
        let access = GatewayTokenFormat.newAccessToken(from: random)
        let wantsRefresh =
            forceRefresh || (grant.scope.contains("offline_access") && client.grantTypes.contains("refresh_token"))
        let refresh = wantsRefresh ? GatewayTokenFormat.newRefreshToken(from: random) : nil
        let record = AccessTokenRecord(
            digest: SecretDigest.hex(access), grantID: grant.id, clientID: client.id, scope: scope,
            resource: grant.resource, expiresAt: now.addingTimeInterval(settings.accessTokenLifetime),
            dpopJKT: binding)
        return (IssuedTokens(access: record, refreshDigest: refresh.map(SecretDigest.hex)), access, refresh)
    }

    private func response(access: String, refresh: String?, scope: ScopeSet, bound: Bool) -> TokenResponse {
        var response = TokenResponse(
            accessToken: access, expiresIn: Int(settings.accessTokenLifetime), scope: scope.description,
            refreshToken: refresh)
        if bound { response.tokenType = "DPoP" }
        return response
    }
}
