/// Cloudflare Access application tokens ("assertions").
///
/// When Access lets a request through to a self-hosted application, it adds `Cf-Access-Jwt-Assertion`: an RS256 JWT
/// signed with the team's keys (published at `<team domain>/cdn-cgi/access/certs`), whose `iss` is the team domain
/// (`https://<team>.cloudflareaccess.com`) and whose `aud` is the application's AUD tag. A user's assertion carries
/// `sub` (the user's id in Access) and `email`; a service token's carries `common_name` (its client id) and an empty
/// `sub`. An application that calls another Access-protected application on the user's behalf forwards the assertion
/// in `Cf-Access-Token` (a "linked app token").
///
/// Verifying one is ordinary JWT verification with ``JWTVerifier``; this type holds the conventions:
///
/// ```swift
/// let keys = JWKSCache(configuration: .init(source: .url(CloudflareAccess.certsURL(teamDomain: team))))
/// let verifier = JWTVerifier(
///     configuration: CloudflareAccess.verifierConfiguration(teamDomain: team, audiences: [aud]), keys: keys)
/// let assertion = try await verifier.verify(headerValue)
/// let user = CloudflareAccess.principal(of: assertion)
/// ```
public enum CloudflareAccess {
    /// The header Access adds to every request it lets through.
    public static let assertionHeader = "Cf-Access-Jwt-Assertion"
    /// The header that carries an assertion to another Access application (a linked app token).
    public static let linkedAppTokenHeader = "Cf-Access-Token"

    /// Where the team publishes its signing keys. `teamDomain` is `https://<team>.cloudflareaccess.com`.
    public static func certsURL(teamDomain: String) -> String {
        JWKSSource.join(teamDomain, "cdn-cgi/access/certs")
    }

    /// What an assertion for one of `audiences` (AUD tags) must satisfy. `sub` is not required: a service token's
    /// assertion has an empty one.
    public static func verifierConfiguration(teamDomain: String, audiences: Set<String>, leeway: Double = 60)
        -> JWTVerifier.Configuration
    {
        JWTVerifier.Configuration(issuer: teamDomain, audiences: audiences, leeway: leeway, requireSubject: false)
    }

    /// Who the assertion is for: the user's `sub`, else their `email`, else a service token's `common_name`; `nil`
    /// when it names nobody.
    public static func principal(of assertion: VerifiedToken) -> String? {
        [assertion.subject, assertion.displayString("email"), assertion.displayString("common_name")]
            .compactMap { $0 }.first { !$0.isEmpty }
    }
}
