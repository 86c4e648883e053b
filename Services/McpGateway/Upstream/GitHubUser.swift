import Foundation
import JSON
import JWTAuth

/// Who a GitHub access token belongs to, from GitHub's REST API: `GET /user` (the numeric `id`, stable where `login`
/// can change, and the public `email`, often null) and, for a verified email, `GET /user/emails` (with the
/// `user:email` scope).
extension UpstreamProvider {
    /// The user of `accessToken`: subject `github|<id>`, name (or login), a verified email when GitHub gives one.
    func githubUser(accessToken: String) async throws(UpstreamError) -> UserProfile {
        guard let github = configuration.github else { throw .protocolViolation("the provider is not GitHub") }
        let user = try await githubGet(github.apiURL + "/user", accessToken: accessToken)
        guard let object = user.objectValue, let id = object["id"], id.doubleValue != nil,
            case .integer(let number) = id
        else { throw .protocolViolation("GitHub's /user answer has no numeric id") }
        var email = object["email"]?.stringValue
        if email == nil, let emails = try? await githubGet(github.apiURL + "/user/emails", accessToken: accessToken) {
            email =
                emails.arrayValue?.compactMap(\.objectValue).first {
                    $0["primary"]?.boolValue == true && $0["verified"]?.boolValue == true
                }?["email"]?.stringValue
        }
        // github.com's ids, as Auth0 names them; a GitHub Enterprise Server's are its own, named with its host.
        let host = URLComponents(string: configuration.issuer)?.host ?? configuration.issuer
        let subject = host == "github.com" ? "github|\(number)" : "github|\(host)|\(number)"
        // A name or email with control characters is not used (ClaimText).
        return UserProfile(
            subject: subject,
            name: object["name"]?.stringValue.flatMap(Self.safe) ?? object["login"]?.stringValue.flatMap(Self.safe),
            email: email.flatMap(Self.safe))
    }

    /// GitHub's tokens of OAuth apps do not expire and come without a refresh token: the gateway asks every hour
    /// whether the token still works, so that a user who revoked the app, or was removed, loses access within the
    /// hour.
    func revalidate(accessToken: String) async throws(UpstreamError) -> UpstreamTokenResponse? {
        guard let github = configuration.github else { return nil }
        _ = try await githubGet(github.apiURL + "/user", accessToken: accessToken)
        return try UpstreamTokenResponse(json: ["access_token": .string(accessToken), "expires_in": 3600])
    }

    private func githubGet(_ url: String, accessToken: String) async throws(UpstreamError) -> JSONValue {
        let reply: (status: Int, body: [UInt8])
        do {
            reply = try await get(
                url,
                headers: [
                    ("Authorization", "Bearer \(accessToken)"), ("Accept", "application/vnd.github+json"),
                    ("X-GitHub-Api-Version", "2022-11-28"), ("User-Agent", "mcp-gateway"),
                ])
        } catch {
            throw .unreachable("GET \(url) failed: \(error)")
        }
        switch reply.status {
        case 200:
            guard let json = try? JSONValue(parsing: reply.body) else {
                throw .protocolViolation("GitHub's answer to \(url) is not JSON")
            }
            return json
        case 401: throw .invalidGrant("GitHub no longer accepts the token (401 at \(url))")
        case 403, 404: throw .rejected(code: "http_\(reply.status)", description: "GitHub refused \(url)")
        default: throw .unreachable("GitHub answered \(reply.status) at \(url)")
        }
    }
}
