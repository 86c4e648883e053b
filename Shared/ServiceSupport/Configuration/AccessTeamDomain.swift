import Foundation

/// Turns a Cloudflare Access team domain setting into the issuer of its assertions: `acme.cloudflareaccess.com`,
/// `https://acme.cloudflareaccess.com` and `https://acme.cloudflareaccess.com/` all become
/// `https://acme.cloudflareaccess.com` (Access writes `iss` without a trailing slash).
public enum AccessTeamDomain {
    /// The team domain as an issuer; a ``ConfigurationError`` for `variable` when it is not a host or a URL without a
    /// path.
    public static func issuer(from value: String, variable: String) throws(ConfigurationError) -> String {
        let example = "https://your-team.cloudflareaccess.com"
        var text = value.trimmingCharacters(in: .whitespaces)
        if !text.contains("://") { text = "https://" + text }
        while text.hasSuffix("/") { text.removeLast() }
        guard let components = URLComponents(string: text),
            let scheme = components.scheme?.lowercased(), scheme == "https" || scheme == "http",
            components.host?.isEmpty == false, components.path.isEmpty, components.query == nil,
            components.fragment == nil, components.user == nil
        else {
            throw ConfigurationError(
                variable: variable, problem: "is not an Access team domain: '\(value)'", example: example)
        }
        try PlainHTTPRule.check(text, variable: variable, example: example)
        return text
    }
}
