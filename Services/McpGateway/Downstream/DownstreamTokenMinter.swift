import Foundation
import JSON
import JWTAuth
import ServiceSupport
import Synchronization

/// Whom a downstream token speaks for: the user, and the MCP client acting for them.
struct DownstreamPrincipal: Sendable, Hashable {
    var subject: String
    var clientID: String?
    var name: String?
    var email: String?
}

/// Signs the short-lived tokens the gateway presents to TodosAPI (RFC 9068 JWT access tokens, `typ: at+jwt`):
/// issuer the gateway, audience TodosAPI, subject the user, scope only what the call needs and the user was granted,
/// and the MCP client named in `client_id` and as the actor (`act`, RFC 8693 §4.1). The subject is a subject of
/// another issuer (the provider users signed in with, or the authorization server of `AUTH_MODE=external`): `sub_id`
/// (RFC 9493, format `iss_sub`) names it, so that the API keeps apart users of different issuers whose `sub` is the
/// same string.
///
/// A token is reused for the same principal and scope during the first half of its lifetime, so that a busy client
/// costs one signature (and TodosAPI one verification) per few minutes rather than per call; it is then at least half
/// its lifetime from expiring when TodosAPI sees it.
final class DownstreamTokenMinter: Sendable {
    let issuer: String
    /// The issuer the subjects are subjects of (``AuthMode/subjectIssuer``).
    let subjectIssuer: String
    let audience: String
    let lifetime: TimeInterval
    let keys: SigningKeyRing
    let clock: any WallClock
    /// Where `jti`s come from.
    private let random: any RandomSource
    private let cache = Mutex<[CacheKey: Minted]>([:])
    static let cacheCapacity = 10_000

    private struct CacheKey: Hashable {
        let principal: DownstreamPrincipal
        let scope: String
        let audience: String
    }

    private struct Minted {
        let token: String
        let keyID: String
        let reuseUntil: Date
    }

    init(
        issuer: String, subjectIssuer: String, audience: String, lifetime: TimeInterval, keys: SigningKeyRing,
        clock: any WallClock, random: any RandomSource = SystemRandomSource()
    ) {
        self.random = random
        self.issuer = issuer
        self.subjectIssuer = subjectIssuer
        self.audience = audience
        self.lifetime = lifetime
        self.keys = keys
        self.clock = clock
    }

    /// A token for `principal` carrying `scope`, for `audience` (the API's; by default ``audience``).
    func token(for principal: DownstreamPrincipal, scope: ScopeSet, audience: String? = nil) throws -> String {
        let key = try keys.signingKey()
        let now = clock.now
        let audience = audience ?? self.audience
        let cacheKey = CacheKey(principal: principal, scope: scope.description, audience: audience)
        if let minted = cache.withLock({ $0[cacheKey] }), minted.keyID == key.keyID, now < minted.reuseUntil {
            return minted.token
        }
        let issuedAt = Int64(now.timeIntervalSince1970.rounded(.down))
        var claims: [String: JSONValue] = [
            "iss": .string(issuer), "sub": .string(principal.subject), "aud": .string(audience),
            "iat": .integer(issuedAt), "exp": .integer(issuedAt + Int64(lifetime)),
            "jti": .string(random.token(byteCount: 16)), "scope": .string(scope.description),
            // RFC 9068 requires client_id: the MCP client, else the gateway itself.
            "client_id": .string(principal.clientID ?? issuer),
            "sub_id": ["format": "iss_sub", "iss": .string(subjectIssuer), "sub": .string(principal.subject)],
        ]
        if let client = principal.clientID { claims["act"] = ["sub": .string(client)] }
        if let name = principal.name { claims["name"] = .string(name) }
        if let email = principal.email { claims["email"] = .string(email) }
        let token = try key.sign(claims, type: "at+jwt")
        let minted = Minted(token: token, keyID: key.keyID, reuseUntil: now.addingTimeInterval(lifetime / 2))
        cache.withLock { cache in
            if cache.count >= Self.cacheCapacity {
                cache = cache.filter { now < $0.value.reuseUntil }
                if cache.count >= Self.cacheCapacity { cache.removeAll(keepingCapacity: true) }
            }
            cache[cacheKey] = minted
        }
        return token
    }
}
