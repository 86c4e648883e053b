import Foundation
import JWTAuth
import ServiceSupport

/// The OpenID Connect provider users sign in with in `AUTH_MODE=gateway` (Auth0, DevIdP, Cloudflare Access for SaaS,
/// Okta, Keycloak, Google, …).
///
/// Every setting has a generic `OIDC_*` name; the Auth0 demo's `AUTH0_*` names and the Cloudflare Access for SaaS
/// demo's `ACCESS_*` names are accepted too, so either demo's `.dev.vars` works as it is. See docs/identity-providers.md.
struct UpstreamConfiguration: Sendable {
    /// The provider's issuer, checked against the ID token's `iss`: `https://<AUTH0_DOMAIN>/`, or `OIDC_ISSUER`
    /// verbatim.
    var issuer: String
    var clientID: String
    var clientSecret: String
    /// Where the provider's endpoints come from.
    var endpoints: Endpoints
    /// The `audience` parameter sent on `/authorize` (Auth0's way of naming the API the access token is for). Sent only
    /// when configured, or by default when the provider is named by `AUTH0_DOMAIN`.
    var audience: String?
    /// Scopes always requested (`OIDC_SCOPE` / `AUTH0_SCOPE`).
    var scope: ScopeSet
    /// `nil`: the provider grants API scopes itself (Auth0 with RBAC, Okta and Keycloak with custom scopes): the API
    /// scopes an MCP client asks for are requested from it and the client gets what it granted. A set
    /// (`GRANTED_SCOPES`): the provider only signs users in (Google, Access for SaaS): API scopes are not requested
    /// from it and every signed-in user may approve these.
    var grantedScopes: ScopeSet?
    /// A name for the consent page, e.g. "Auth0" or "DevIdP".
    var displayName: String
    /// `OIDC_ID_TOKEN_ALGORITHMS`: the `alg` values accepted on ID tokens (RS256 unless the provider signs otherwise).
    var idTokenAlgorithms: Set<SignatureAlgorithm> = [.rs256]
    /// Set when the provider is GitHub, which is not OpenID Connect (``GitHubProvider``).
    var github: GitHubProvider? = nil

    /// How the provider's endpoints are found.
    enum Endpoints: Sendable, Equatable {
        /// OpenID Connect Discovery: `<issuer>/.well-known/openid-configuration`.
        case discovery
        /// Given one by one, as Cloudflare Access for SaaS shows them.
        case explicit(authorization: String, token: String, jwks: String, userinfo: String?)
    }

    static func load(from settings: Settings) throws(ConfigurationError) -> UpstreamConfiguration {
        if let github = try GitHubProvider.load(from: settings) { return github }
        let endpoints = try loadEndpoints(from: settings)
        let issuer = try issuer(from: settings, endpoints: endpoints)
        let namedByAuth0Domain = try settings.oneOf(["OIDC_ISSUER"]) == nil && settings.string("AUTH0_DOMAIN") != nil
        let audience =
            try settings.oneOf(["OIDC_AUDIENCE", "AUTH0_AUDIENCE"]).map { $0.value.split(separator: ",")[0] }
            .map { String($0).trimmingCharacters(in: .whitespaces) }
            ?? (namedByAuth0Domain ? "urn:todos-api" : nil)
        let grantedScopes = try settings.oneOf(["GRANTED_SCOPES"]).map { found throws(ConfigurationError) in
            let scopes = ScopeSet(spaceSeparated: found.value)
            // Whether they are scopes of the tools is checked once the tools are made (``Gateway``).
            guard !scopes.isEmpty else {
                throw ConfigurationError(
                    variable: found.name, problem: "must list API scopes", example: "read:todos write:todos")
            }
            return scopes
        }
        return UpstreamConfiguration(
            issuer: issuer,
            clientID: try settings.requiredOneOf(
                ["AUTH0_CLIENT_ID", "OIDC_CLIENT_ID", "ACCESS_CLIENT_ID"], example: "your-application-client-id"
            ).value,
            clientSecret: try settings.requiredOneOf(
                ["AUTH0_CLIENT_SECRET", "OIDC_CLIENT_SECRET", "ACCESS_CLIENT_SECRET"],
                example: "your-application-client-secret"
            ).value,
            endpoints: endpoints,
            audience: audience,
            // By default the sign-in asks for the user's identity, a refresh token and, when the provider grants API
            // scopes, read:todos (the least a Todos client needs).
            scope: ScopeSet(
                spaceSeparated: try settings.oneOf(["OIDC_SCOPE", "AUTH0_SCOPE"])?.value
                    ?? (grantedScopes == nil
                        ? "openid email profile offline_access read:todos" : "openid email profile offline_access")),
            grantedScopes: grantedScopes,
            displayName: settings.string("IDP_NAME") ?? defaultName(for: issuer),
            idTokenAlgorithms: try idTokenAlgorithms(from: settings))
    }

    /// RS256, RS384, RS512, PS256, PS384, PS512 and ES256, comma- or space-separated; `none` and HMAC never.
    private static func idTokenAlgorithms(from settings: Settings) throws(ConfigurationError) -> Set<SignatureAlgorithm>
    {
        guard let value = settings.string("OIDC_ID_TOKEN_ALGORITHMS") else { return [.rs256] }
        var algorithms: Set<SignatureAlgorithm> = []
        for name in value.split(whereSeparator: { $0 == "," || $0 == " " }) {
            guard let algorithm = SignatureAlgorithm(rawValue: name.uppercased()) else {
                throw ConfigurationError(
                    variable: "OIDC_ID_TOKEN_ALGORITHMS",
                    problem:
                        "'\(name)' is not one of \(SignatureAlgorithm.all.map(\.rawValue).joined(separator: ", "))",
                    example: "RS256,ES256")
            }
            algorithms.insert(algorithm)
        }
        guard !algorithms.isEmpty else {
            throw ConfigurationError(
                variable: "OIDC_ID_TOKEN_ALGORITHMS", problem: "names no algorithm", example: "RS256")
        }
        return algorithms
    }

    /// Explicit endpoints when the authorization, token and key URLs are all given (`OIDC_*_URL` or the Access for
    /// SaaS demo's `ACCESS_*_URL`); discovery when none is; an error naming the missing one otherwise.
    private static func loadEndpoints(from settings: Settings) throws(ConfigurationError) -> Endpoints {
        let names = [
            ("authorization", ["OIDC_AUTHORIZATION_URL", "ACCESS_AUTHORIZATION_URL"], "/authorization"),
            ("token", ["OIDC_TOKEN_URL", "ACCESS_TOKEN_URL"], "/token"),
            ("jwks", ["OIDC_JWKS_URL", "ACCESS_JWKS_URL"], "/jwks"),
        ]
        let example = "https://your-team.cloudflareaccess.com/cdn-cgi/access/sso/oidc/your-client-id"
        var urls: [String: String] = [:]
        for (key, variables, suffix) in names {
            urls[key] = try settings.urlOneOf(variables, example: example + suffix)
        }
        if urls.isEmpty { return .discovery }
        for (key, variables, suffix) in names where urls[key] == nil {
            throw ConfigurationError(
                variable: variables[0],
                problem: "is missing: explicit endpoints need the authorization, token and key (JWKS) URLs",
                example: example + suffix)
        }
        return .explicit(
            authorization: urls["authorization"]!, token: urls["token"]!, jwks: urls["jwks"]!,
            userinfo: try settings.urlOneOf(
                ["OIDC_USERINFO_URL", "ACCESS_USERINFO_URL"], example: example + "/userinfo"))
    }

    /// The issuer: `OIDC_ISSUER` verbatim, `https://<AUTH0_DOMAIN>/`, or, for explicit Cloudflare Access for SaaS
    /// endpoints, the URL the endpoints share (`…/cdn-cgi/access/sso/oidc/<client id>`).
    private static func issuer(from settings: Settings, endpoints: Endpoints) throws(ConfigurationError) -> String {
        if case .explicit(let authorization, _, _, _) = endpoints, settings.string("OIDC_ISSUER") == nil,
            settings.string("AUTH0_DOMAIN") == nil
        {
            guard authorization.contains("/cdn-cgi/access/sso/oidc/"), authorization.hasSuffix("/authorization") else {
                throw ConfigurationError(
                    variable: "OIDC_ISSUER",
                    problem: "is missing: with explicit endpoints, name the issuer the ID tokens carry in 'iss'",
                    example: "https://login.example.com")
            }
            return String(authorization.dropLast("/authorization".count))
        }
        return try settings.issuer()
    }

    static func defaultName(for issuer: String) -> String {
        let host = URLComponents(string: issuer)?.host ?? issuer
        if host.hasSuffix("auth0.com") { return "Auth0" }
        if host.hasSuffix("cloudflareaccess.com") { return "Cloudflare Access" }
        if host.hasSuffix("okta.com") || host.hasSuffix("oktapreview.com") { return "Okta" }
        if host == "accounts.google.com" { return "Google" }
        // A provider on this machine is named by its address: `make dev` names DevIdP with IDP_NAME, and another
        // local provider (a test double, Keycloak in a container) must not pass for it.
        if let port = URLComponents(string: issuer)?.port { return "\(host):\(port)" }
        return host
    }
}
