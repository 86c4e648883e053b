import Foundation
import JWTAuth
import Resilience
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
        /// It could not be checked now (the issuer's keys cannot be fetched, the replay store does not answer): not
        /// the assertion's fault, a 503 with `Retry-After`.
        case unavailable(DependencyUnavailable)

        var message: String {
            switch self {
            case .invalid(let error): error.message.replacingOccurrences(of: "access token", with: "assertion")
            case .missingID: "The assertion has no jti: one-time use cannot be checked"
            case .tooLongLived:
                "The assertion is valid for more than \(Int(OneTimeAssertion.maximumLifetime / 60)) minutes"
            case .replayed: "The assertion was used before"
            case .unavailable(let reason): "The assertion cannot be checked now: \(reason.dependency) is unavailable"
            }
        }
    }

    /// Verifies `jwt` with `verifier`, and that it has a `jti` and a short life. It is not used up yet: the caller
    /// checks what else it must say, then ``consume(_:namespace:leeway:)``s it, so that an assertion refused for
    /// another reason (presented by the wrong client, say) is not spent.
    ///
    /// - Parameter issuerIsTrusted: Whether the issuer is one the operator configured (an enterprise identity
    ///   provider): its keys out of reach is an outage, a 503 to retry. A client's own keys out of reach fail its
    ///   authentication instead.
    func check(_ jwt: String, with verifier: JWTVerifier, issuerIsTrusted: Bool = false) async throws(Failure)
        -> VerifiedToken
    {
        let token: VerifiedToken
        do { token = try await verifier.verify(jwt) } catch {
            if error == .keysUnavailable, issuerIsTrusted {
                throw .unavailable(
                    DependencyUnavailable(
                        "the assertion's issuer", detail: "the keys of \(verifier.configuration.issuer) could not be fetched",
                        retryAfter: 5))
            }
            throw .invalid(error)
        }
        guard let id = token.string("jti"), !id.isEmpty else { throw .missingID }
        guard token.expiresAt.timeIntervalSince(clock.now) <= Self.maximumLifetime else { throw .tooLongLived }
        return token
    }

    /// Records `token` as used, on every instance; throws ``Failure/replayed`` if it was before. `namespace` keeps the
    /// `jti`s of different issuers apart; `leeway` is the verifier's, during which an expired token still verifies.
    func consume(_ token: VerifiedToken, namespace: String, leeway: TimeInterval) async throws(Failure) {
        let used: Bool
        do {
            used = try await usedAssertions.markUsed(
                digest: SecretDigest.hex(namespace + "\u{0}" + (token.string("jti") ?? "")),
                expiresAt: token.expiresAt.addingTimeInterval(leeway), now: clock.now)
        } catch let error as DependencyUnavailable {
            throw .unavailable(error)
        } catch {
            throw .unavailable(DependencyUnavailable("the database", detail: "recording an assertion: \(error)"))
        }
        guard used else { throw .replayed }
    }
}
