import Foundation
import JWTAuth
import ServiceSupport

/// `AUTH_MODE=access`: the Cloudflare Access application in front of the gateway (the variable names of Cloudflare's
/// `mcp-access-self-hosted` demo).
struct CloudflareAccessSettings: Sendable {
    /// `https://<team>.cloudflareaccess.com`: the issuer of Access assertions.
    var teamDomain: String
    /// The Access application's AUD tag(s).
    var audiences: Set<String>
    /// The scopes a user Access let in has on the tools (Access policies decide who gets in, not what they may do):
    /// `ACCESS_SCOPES`, else every scope of the tools (set when the tools are made).
    var scopes: ScopeSet?

    /// Where Access publishes its signing keys.
    var certsURL: String { CloudflareAccess.certsURL(teamDomain: teamDomain) }

    static func load(from settings: Settings) throws(ConfigurationError) -> CloudflareAccessSettings {
        let team = try AccessTeamDomain.issuer(
            from: try settings.required("TEAM_DOMAIN", example: "https://your-team.cloudflareaccess.com"),
            variable: "TEAM_DOMAIN")
        let audiences = settings.list("POLICY_AUD", default: [])
        guard !audiences.isEmpty else {
            throw ConfigurationError(
                variable: "POLICY_AUD", problem: "is missing (the AUD tag of the Access application)",
                example: "4714c1358e65fe4b408ad6d432a5f878f08194bdb4752441fd56faefa9b2b6f2")
        }
        return CloudflareAccessSettings(
            teamDomain: team, audiences: Set(audiences),
            scopes: settings.string("ACCESS_SCOPES").map(ScopeSet.init(spaceSeparated:)))
    }
}
