import Foundation
import JWTAuth
import ServiceSupport

/// GitHub as the provider users sign in with: an OAuth app, not OpenID Connect. There is no discovery, no ID token
/// and no key set: the user is whoever GitHub's REST API says the access token belongs to (`GET /user`, and
/// `/user/emails` for a verified email when the public one is not set). GitHub's tokens cannot serve TodosAPI, so the
/// tools always get tokens the gateway mints.
///
/// Settings: `GITHUB_CLIENT_ID` and `GITHUB_CLIENT_SECRET` (the OAuth app's), `GITHUB_URL` (`https://github.com`, or a
/// GitHub Enterprise Server), `GITHUB_API_URL` (`https://api.github.com`, or `<GITHUB_URL>/api/v3` for an Enterprise
/// Server), `GITHUB_SCOPE` (`read:user user:email`), and `GRANTED_SCOPES` (what every signed-in user may approve:
/// `read:todos write:todos` unless set).
struct GitHubProvider: Sendable, Equatable {
    /// Where the REST API is.
    var apiURL: String

    static let defaultURL = "https://github.com"

    /// The provider's configuration when `GITHUB_CLIENT_ID` is set; `nil` otherwise.
    static func load(from settings: Settings) throws(ConfigurationError) -> UpstreamConfiguration? {
        guard settings.string("GITHUB_CLIENT_ID") != nil else { return nil }
        for other in ["AUTH0_DOMAIN", "OIDC_ISSUER", "ACCESS_AUTHORIZATION_URL", "OIDC_AUTHORIZATION_URL"]
        where settings.string(other) != nil {
            throw ConfigurationError(
                variable: other, problem: "is set as well as GITHUB_CLIENT_ID: choose one provider to sign users in",
                example: "")
        }
        var base = try settings.url("GITHUB_URL", default: defaultURL, example: defaultURL)
        while base.hasSuffix("/") { base.removeLast() }
        try PlainHTTPRule.check(base, variable: "GITHUB_URL", example: defaultURL)
        var api = try settings.url(
            "GITHUB_API_URL", default: base == defaultURL ? "https://api.github.com" : base + "/api/v3",
            example: "https://api.github.com")
        while api.hasSuffix("/") { api.removeLast() }
        try PlainHTTPRule.check(api, variable: "GITHUB_API_URL", example: "https://api.github.com")
        let granted = ScopeSet(spaceSeparated: settings.string("GRANTED_SCOPES", default: "read:todos write:todos"))
        // Whether they are scopes of the tools is checked once the tools are made (``Gateway``).
        guard !granted.isEmpty else {
            throw ConfigurationError(
                variable: "GRANTED_SCOPES", problem: "must list API scopes", example: "read:todos write:todos")
        }
        return UpstreamConfiguration(
            issuer: base,
            clientID: try settings.required("GITHUB_CLIENT_ID", example: "Iv1.0123456789abcdef"),
            clientSecret: try settings.required("GITHUB_CLIENT_SECRET", example: "your-oauth-app-client-secret"),
            endpoints: .explicit(
                authorization: base + "/login/oauth/authorize", token: base + "/login/oauth/access_token",
                jwks: api + "/none", userinfo: api + "/user"),
            audience: nil,
            scope: ScopeSet(spaceSeparated: settings.string("GITHUB_SCOPE", default: "read:user user:email")),
            grantedScopes: granted, displayName: settings.string("IDP_NAME") ?? "GitHub",
            github: GitHubProvider(apiURL: api))
    }
}
