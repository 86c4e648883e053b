import Foundation

/// Turns `AUTH0_DOMAIN` into an issuer URL the way the Cloudflare Auth0 demo does (`https://${AUTH0_DOMAIN}/`):
///
/// | `AUTH0_DOMAIN` | issuer |
/// | --- | --- |
/// | `acme.us.auth0.com` | `https://acme.us.auth0.com/` |
/// | `https://acme.us.auth0.com` | `https://acme.us.auth0.com/` |
/// | `http://localhost:8790` | `http://localhost:8790/` |
///
/// Auth0 issuers always end with a slash, and tokens carry the issuer with it, so the slash is added when missing.
public enum Auth0Domain {
    /// The issuer for `value`; a ``ConfigurationError`` for `variable` when it is not a domain or an http(s) URL.
    public static func issuer(from value: String, variable: String = "AUTH0_DOMAIN") throws(ConfigurationError)
        -> String
    {
        let example = "acme.us.auth0.com"
        var text = value.trimmingCharacters(in: .whitespaces)
        if !text.contains("://") {
            guard isHostAndPort(text.hasSuffix("/") ? String(text.dropLast()) : text) else {
                throw ConfigurationError(
                    variable: variable, problem: "is not a domain or an http(s) URL: '\(value)'",
                    example: example)
            }
            text = "https://" + text
        }
        guard let components = URLComponents(string: text), let scheme = components.scheme?.lowercased(),
            scheme == "https" || scheme == "http", let host = components.host, !host.isEmpty,
            components.query == nil, components.fragment == nil, components.user == nil
        else {
            throw ConfigurationError(
                variable: variable, problem: "is not a domain or an http(s) URL: '\(value)'",
                example: example)
        }
        return text.hasSuffix("/") ? text : text + "/"
    }

    private static func isHostAndPort(_ text: String) -> Bool {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count <= 2, let host = parts.first, !host.isEmpty else { return false }
        if parts.count == 2, UInt16(parts[1]) == nil { return false }
        return host.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "." || $0 == "-") }
            && !host.hasPrefix(".") && !host.hasPrefix("-")
    }
}

extension Settings {
    /// The issuer of the OpenID Connect provider (or OAuth server) the service trusts: `OIDC_ISSUER` exactly as the
    /// provider writes it (Okta, Keycloak and Google issuers have no trailing slash), or `AUTH0_DOMAIN` normalised the
    /// Auth0 way. Setting both is an error rather than a silent choice.
    public func issuer() throws(ConfigurationError) -> String {
        if string("OIDC_ISSUER") != nil {
            if string("AUTH0_DOMAIN") != nil {
                throw ConfigurationError(
                    variable: "AUTH0_DOMAIN", problem: "and OIDC_ISSUER are both set; set only one of them",
                    example: "acme.us.auth0.com")
            }
            let issuer = try url("OIDC_ISSUER", example: "https://keycloak.example.com/realms/demo")
            try PlainHTTPRule.check(
                issuer, variable: "OIDC_ISSUER", example: "https://keycloak.example.com/realms/demo")
            return issuer
        }
        guard let domain = string("AUTH0_DOMAIN") else {
            throw ConfigurationError(
                variable: "AUTH0_DOMAIN",
                problem: "is missing (or set OIDC_ISSUER for another OpenID Connect provider)",
                example: "acme.us.auth0.com")
        }
        let issuer = try Auth0Domain.issuer(from: domain)
        try PlainHTTPRule.check(issuer, variable: "AUTH0_DOMAIN", example: "acme.us.auth0.com")
        return issuer
    }
}
