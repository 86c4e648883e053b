import Foundation
import JWTAuth
import Logging
import ServiceSupport
import Synchronization

/// `DOWNSTREAM_TOKENS=exchange`: the provider exchanges the user's upstream access token for one of TodosAPI's
/// audience with the one scope a call needs (RFC 8693). Exchanged tokens are kept per grant and scope until a minute
/// before they expire.
final class TokenExchanges: Sendable {
    let provider: UpstreamProvider
    let audience: String
    let clock: any WallClock
    let logger: Logger
    private let cache = Mutex<[CacheKey: Exchanged]>([:])
    static let cacheCapacity = 10_000
    /// An exchanged token is not presented in its last minute.
    static let margin: TimeInterval = 60

    private struct CacheKey: Hashable {
        let grantID: String
        let scope: String
        /// The upstream token it was exchanged from: a renewed one (or a new sign-in) exchanges again.
        let subjectDigest: String
    }

    private struct Exchanged {
        let token: String
        let usableUntil: Date
    }

    init(provider: UpstreamProvider, audience: String, clock: any WallClock, logger: Logger) {
        self.provider = provider
        self.audience = audience
        self.clock = clock
        self.logger = logger
    }

    func token(grantID: String, upstreamToken: String, scope: String) async throws(TodosAPIFailure) -> String {
        let key = CacheKey(grantID: grantID, scope: scope, subjectDigest: SecretDigest.hex(upstreamToken))
        let now = clock.now
        if let cached = cache.withLock({ $0[key] }), now < cached.usableUntil { return cached.token }
        let response: UpstreamTokenResponse
        do {
            response = try await provider.exchange(subjectToken: upstreamToken, audience: audience, scope: [scope])
        } catch {
            switch error {
            case .invalidGrant: throw .signInRequired
            case .unreachable:
                logger.error("The token exchange could not reach the provider", metadata: ["error": "\(error)"])
                throw .providerUnavailable
            case .rejected, .protocolViolation:
                // The provider does not allow this exchange (not enabled for the gateway's client, an audience it
                // does not know): an operator's problem, named in the log.
                logger.error("The provider refused the token exchange", metadata: ["error": "\(error)"])
                throw .gatewayUnavailable
            }
        }
        let lifetime = response.expiresIn ?? 300
        let exchanged = Exchanged(
            token: response.accessToken, usableUntil: now.addingTimeInterval(lifetime - Self.margin))
        cache.withLock { cache in
            if cache.count >= Self.cacheCapacity {
                cache = cache.filter { now < $0.value.usableUntil }
                if cache.count >= Self.cacheCapacity { cache.removeAll(keepingCapacity: true) }
            }
            cache[key] = exchanged
        }
        return response.accessToken
    }
}

/// The credential of a grant under `DOWNSTREAM_TOKENS=exchange`.
struct ExchangedCredential: TodosAPICredentialSource {
    let exchanges: TokenExchanges
    let tokens: UpstreamTokenService
    let grant: Grant
    let granted: ScopeSet

    func credential(scope: String) async throws(TodosAPIFailure) -> TodosAPIClient.Credential {
        guard granted.contains(scope) else { throw .forbidden("this connection was not granted the \(scope) scope") }
        let upstream = try await GrantCredentials.upstreamAccessToken(tokens, grant: grant)
        return .bearer(try await exchanges.token(grantID: grant.id, upstreamToken: upstream, scope: scope))
    }
}
