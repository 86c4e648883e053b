import Foundation
import JWTAuth
import ServiceSupport

/// How tool calls prove to TodosAPI whom they are made for (`DOWNSTREAM_TOKENS`). Never with the MCP client's own
/// credential: the MCP authorization specification forbids token passthrough.
enum DownstreamTokenKind: String, Sendable {
    /// A short-lived JWT the gateway signs itself for each user, client and scope (``DownstreamTokenMinter``); TodosAPI
    /// trusts the gateway as an issuer. The default where the provider's tokens cannot serve the API, and the only
    /// choice in `external` and `access` modes.
    case mint
    /// The access token the provider issued to the gateway for the API's audience (Auth0 with `AUTH0_AUDIENCE`),
    /// renewed with the provider's refresh token. `AUTH_MODE=gateway` only.
    case upstream
    /// An RFC 8693 token exchange at the provider's token endpoint: the user's upstream access token for one of the
    /// API's audience and the tool's scope (Keycloak, Okta). `AUTH_MODE=gateway` only.
    case exchange
}

/// `DOWNSTREAM_*` and `SIGNING_KEY_ROTATION`: the tokens the gateway presents to TodosAPI.
struct DownstreamTokenSettings: Sendable {
    var kind: DownstreamTokenKind
    /// `DOWNSTREAM_AUDIENCE`: the `aud` of minted and exchanged tokens, TodosAPI's identifier; by default the first of
    /// `OIDC_AUDIENCE` / `AUTH0_AUDIENCE`, else `urn:todos-api`.
    var audience: String
    /// `DOWNSTREAM_TOKEN_TTL`: how long a minted token is valid (at most five minutes).
    var lifetime: TimeInterval
    /// `SIGNING_KEY_ROTATION`: how often the signing key is replaced (``SigningKeyRing``).
    var keyRotation: TimeInterval

    static let defaultAudience = "urn:todos-api"

    /// `upstreamCanServeAPI`: whether, in `AUTH_MODE=gateway`, the provider issues access tokens for the API (an
    /// audience is requested and the provider grants API scopes itself); `nil` in the other modes.
    static func load(from settings: Settings, mode: String, upstreamCanServeAPI: Bool?) throws(ConfigurationError)
        -> DownstreamTokenSettings
    {
        let kind: DownstreamTokenKind
        if let value = settings.string("DOWNSTREAM_TOKENS") {
            guard let chosen = DownstreamTokenKind(rawValue: value.lowercased()) else {
                throw ConfigurationError(
                    variable: "DOWNSTREAM_TOKENS", problem: "must be mint, upstream or exchange", example: "mint")
            }
            kind = chosen
        } else {
            kind = upstreamCanServeAPI == true ? .upstream : .mint
        }
        if settings.string("GITHUB_CLIENT_ID") != nil, kind != .mint {
            throw ConfigurationError(
                variable: "DOWNSTREAM_TOKENS",
                problem: "must be mint with GitHub: its tokens are for GitHub's API, not TodosAPI", example: "mint")
        }
        if upstreamCanServeAPI == nil, kind != .mint {
            throw ConfigurationError(
                variable: "DOWNSTREAM_TOKENS",
                problem: "must be mint with AUTH_MODE=\(mode): the gateway holds no provider token of the user there,"
                    + " and forwarding the MCP client's own token to TodosAPI is token passthrough",
                example: "mint")
        }
        var audience = defaultAudience
        if let chosen = settings.string("DOWNSTREAM_AUDIENCE") {
            audience = chosen.trimmingCharacters(in: .whitespaces)
        } else if let api = try settings.oneOf(["OIDC_AUDIENCE", "AUTH0_AUDIENCE"]) {
            audience = String(api.value.split(separator: ",").first ?? "").trimmingCharacters(in: .whitespaces)
        }
        guard !audience.isEmpty, !audience.contains(",") else {
            throw ConfigurationError(
                variable: "DOWNSTREAM_AUDIENCE", problem: "must name one audience, TodosAPI's identifier",
                example: defaultAudience)
        }
        return DownstreamTokenSettings(
            kind: kind, audience: audience,
            lifetime: try settings.duration("DOWNSTREAM_TOKEN_TTL", default: 300, in: 30...300),
            keyRotation: try settings.duration(
                "SIGNING_KEY_ROTATION", default: 30 * 86_400, in: 60...365 * 86_400))
    }
}
