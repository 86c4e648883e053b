import Foundation
import JSON
import JWTAuth
import Logging
import ServiceSupport

/// Enterprise-managed authorization (MCP's extension, the IETF identity assertion authorization grant): a client
/// presents an Identity Assertion JWT Authorization Grant (ID-JAG) that the enterprise's identity provider issued
/// for it, with the RFC 7523 JWT-bearer grant, and gets an access token for the user the assertion names: no browser,
/// no consent page, the enterprise decided.
///
/// The ID-JAG must be signed by a trusted issuer (`IDENTITY_ASSERTION_ISSUERS`, keys from its discovery document),
/// have `typ: oauth-id-jag+jwt`, `aud` this gateway, `client_id` the authenticated client, `resource` the MCP
/// resource, a `sub`, a short life and a `jti` used once. Anything else is `invalid_grant` (RFC 7523 §3.1).
struct JWTBearerGrant: Sendable {
    static let assertionType = "oauth-id-jag+jwt"

    /// One verifier per trusted issuer.
    let issuers: [String: JWTVerifier]
    let oneTime: OneTimeAssertion
    let issuing: GrantWithoutCode
    /// The names of the MCP resource (`/mcp`, `/sse`) an assertion's `resource` may carry.
    let resources: [String]
    /// The issuer of the provider users sign in with (`AUTH_MODE=gateway`): its subjects are the users'.
    let signInIssuer: String
    /// Where the assertion's groups and roles are, for the tool policy.
    var claimNames = IdentityClaimNames()

    /// The user an assertion names. The subjects of the sign-in provider are the users' own, whichever way they
    /// arrive; another enterprise issuer's are kept apart (`<issuer>|<sub>`), so that no trusted issuer can speak
    /// for users of another.
    func subject(_ subject: String, issuer: String) -> String {
        issuer == signInIssuer ? subject : issuer + "|" + subject
    }

    /// Verifiers for `issuers`, their keys fetched from each one's discovery document with `fetcher`.
    static func verifiers(
        issuers: [String], audience: String, fetcher: any DocumentFetching, clock: any WallClock, logger: Logger
    ) -> [String: JWTVerifier] {
        Dictionary(
            issuers.map { issuer in
                let keys = JWKSCache(
                    configuration: .init(source: .discovery(issuer: issuer), allowedAlgorithms: ClientKeys.algorithms),
                    fetcher: fetcher, clock: clock, logger: logger)
                return (
                    issuer,
                    JWTVerifier(
                        configuration: .init(
                            issuer: issuer, audiences: [audience], allowedAlgorithms: ClientKeys.algorithms,
                            cacheCapacity: 0, acceptedTypes: [assertionType], requiresType: true),
                        keys: keys, clock: clock)
                )
            }, uniquingKeysWith: { first, _ in first })
    }

    func issue(_ parameters: FormParameters, client: RegisteredClient, binding: String?, now: Date) async throws
        -> TokenResponse
    {
        let assertion = try parameters.required("assertion")
        guard let issuer = (try? UnverifiedClaims.read(assertion))?["iss"]?.stringValue else {
            throw ErrorResponse.invalidGrant("The assertion is not a JWT naming its issuer")
        }
        guard let verifier = issuers[issuer] else {
            throw ErrorResponse.invalidGrant("The assertion's issuer is not a trusted enterprise identity provider")
        }
        let token: VerifiedToken
        do { token = try await oneTime.check(assertion, with: verifier, issuerIsTrusted: true) } catch {
            if case .unavailable(let reason) = error { throw reason }
            throw ErrorResponse.invalidGrant("The identity assertion is not valid: \(error.message)")
        }
        guard token.string("client_id") == client.id else {
            throw ErrorResponse.invalidGrant("The identity assertion was issued to another client (client_id)")
        }
        let named: [String] =
            switch token.claims["resource"] {
            case .string(let one)?: [one]
            case .array(let many)?: many.compactMap(\.stringValue)
            default: []
            }
        guard
            named.contains(where: { name in
                resources.contains { GatewayAddress.sameResource($0, name) }
            })
        else {
            throw ErrorResponse.invalidGrant("The identity assertion is not for this MCP server (resource)")
        }
        // What the client may have, narrowed to what the enterprise granted when the assertion says.
        var allowed = client.scope ?? []
        switch token.claims["scope"] {
        case nil: break
        case .string(let asserted)?: allowed = allowed.intersection(ScopeSet(spaceSeparated: asserted))
        default: throw ErrorResponse.invalidGrant("The identity assertion's scope is not a space-separated string")
        }
        let scope = try GrantWithoutCode.scope(requested: try parameters.single("scope"), allowed: allowed)
        // Spent only now, once everything else about it holds.
        do {
            try await oneTime.consume(token, namespace: "id-jag:" + issuer, leeway: verifier.configuration.leeway)
        } catch {
            if case .unavailable(let reason) = error { throw reason }
            throw ErrorResponse.invalidGrant("The identity assertion is not valid: \(error.message)")
        }
        let user = UserProfile(
            subject: subject(token.subject ?? "", issuer: issuer),
            name: token.displayString("name") ?? token.displayString("preferred_username"),
            email: token.displayString("email"),
            groups: claimNames.groups(in: token.claims), roles: claimNames.roles(in: token.claims),
            assertedBy: issuer == signInIssuer ? nil : issuer)
        return try await issuing.issue(user: user, client: client, scope: scope, binding: binding, now: now)
    }
}
