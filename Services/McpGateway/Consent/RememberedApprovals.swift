import Foundation
import Hummingbird
import JWTAuth
import ServiceSupport

/// Which clients this browser approved, for which redirect URI and scopes, in a signed cookie: a known client returning
/// to the same place and asking for no more than it was granted is not asked again for 30 days. The redirect URI is
/// part of the key because a client described by a metadata document can change its redirect URIs, even to another
/// host: the user must see that on the consent page.
struct RememberedApprovals {
    static let cookieName = "gw_approved"
    static let lifetime: TimeInterval = 30 * 86_400
    static let capacity = 20

    struct Approval: Codable {
        var scope: ScopeSet
        var expiresAt: TimeInterval
    }

    let signer: CookieSigner

    func approvals(in request: Request, now: Date) -> [String: Approval] {
        guard let value = signer.cookie(Self.cookieName, in: request),
            let payload = signer.verify(value, name: Self.cookieName),
            let approvals = try? JSONDecoder().decode([String: Approval].self, from: Data(payload))
        else { return [:] }
        return approvals.filter { $0.value.expiresAt > now.timeIntervalSince1970 }
    }

    /// The key of an approval: a digest of the client id and the redirect URI (a loopback URI without its port, which
    /// native apps pick anew each time, RFC 8252 §7.3), short enough for twenty of them to fit in a cookie.
    static func key(_ request: ClientAuthorizationRequest) -> String {
        var redirect = request.redirectURI
        if var components = URLComponents(string: redirect), components.scheme == "http",
            RedirectURI.isLoopback(host: components.host ?? "")
        {
            components.port = nil
            redirect = components.string ?? redirect
        }
        return String(SecretDigest.hex(request.clientID + "\n" + redirect).prefix(32))
    }

    func covers(_ request: ClientAuthorizationRequest, in httpRequest: Request, now: Date) -> Bool {
        guard let approval = approvals(in: httpRequest, now: now)[Self.key(request)] else { return false }
        return approval.scope.isSuperset(of: request.scope)
    }

    /// The `Set-Cookie` value that remembers one more approval (the oldest are dropped beyond ``capacity``).
    func remembering(_ request: ClientAuthorizationRequest, in httpRequest: Request, now: Date) -> String {
        var approvals = approvals(in: httpRequest, now: now)
        approvals[Self.key(request)] = Approval(
            scope: request.scope, expiresAt: now.addingTimeInterval(Self.lifetime).timeIntervalSince1970)
        if approvals.count > Self.capacity {
            let kept = approvals.sorted { $0.value.expiresAt > $1.value.expiresAt }.prefix(Self.capacity)
            approvals = Dictionary(uniqueKeysWithValues: kept.map { ($0.key, $0.value) })
        }
        let payload = (try? JSONEncoder().encode(approvals)) ?? Data()
        return signer.setCookie(
            Self.cookieName, value: signer.sign(Array(payload), name: Self.cookieName), maxAge: Int(Self.lifetime))
    }
}
