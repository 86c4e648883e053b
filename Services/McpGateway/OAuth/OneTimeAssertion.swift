import Foundation
import JWTAuth
import ServiceSupport

/// The checks every JWT assertion presented to `/token` gets beyond its signature and claims (RFC 7523 §3): a `jti`,
/// a short life, and one use only, on every instance (``UsedAssertionStore``).
struct OneTimeAssertion: Sendable {
    let usedAssertions: any UsedAssertionStore
    let clock: any WallClock
    /// An assertion valid for longer is refused: the replay store keeps each one until it expires.
    static let maximumLifetime: TimeInterval = 600

    enum Failure: Error, Equatable {
        case invalid(BearerAuthError)
        case missingID
        case tooLongLived
        case replayed

        var message: String {
            switch self {
            case .invalid(let error): error.message.replacingOccurrences(of: "access token", with: "assertion")
            case .missingID: "The assertion has no jti: one-time use cannot be checked"
            case .tooLongLived:
                "The assertion is valid for more than \(Int(OneTimeAssertion.maximumLifetime / 60)) minutes"
            case .replayed: "The assertion was used before"
            }
        }
    }

    /// Verifies `jwt` with `verifier`, then records it as used; `namespace` keeps the `jti`s of different issuers
    /// apart.
    func verify(_ jwt: String, with verifier: JWTVerifier, namespace: String) async throws(Failure) -> VerifiedToken {
        let token: VerifiedToken
        do { token = try await verifier.verify(jwt) } catch { throw .invalid(error) }
        guard let id = token.string("jti"), !id.isEmpty else { throw .missingID }
        let now = clock.now
        guard token.expiresAt.timeIntervalSince(now) <= Self.maximumLifetime else { throw .tooLongLived }
        let used: Bool
        do {
            used = try await usedAssertions.markUsed(
                digest: SecretDigest.hex(namespace + "\u{0}" + id),
                // Kept past its expiry by the verifier's leeway, during which it would still verify.
                expiresAt: token.expiresAt.addingTimeInterval(verifier.configuration.leeway), now: now)
        } catch {
            throw .invalid(.keysUnavailable.with(message: "The gateway could not record the assertion; retry"))
        }
        guard used else { throw .replayed }
        return token
    }
}
