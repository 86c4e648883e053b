import Foundation
import HTTPTypes
import Hummingbird
import JWTAuth
import Resilience
import ServiceSupport

/// Checks the DPoP proofs (RFC 9449) of requests to `/token` and to the MCP endpoints: the proof itself
/// (``DPoPProof``), the nonce when one is given or required, and one use of each proof on every instance.
struct DPoPChecker: Sendable {
    static let header = HTTPField.Name("DPoP")!
    static let nonceHeader = HTTPField.Name("DPoP-Nonce")!
    /// The `alg`s a proof may be signed with, by name, in a stable order (metadata and challenges list them).
    static let algorithmNames = DPoPProof.algorithms.map(\.rawValue).sorted()
    let nonces: DPoPNonces
    let usedProofs: any UsedAssertionStore
    let clock: any WallClock
    /// `DPOP_NONCE_REQUIRED`: proofs must carry a nonce the gateway issued (in a `DPoP-Nonce` header).
    let nonceRequired: Bool

    enum Failure: Error, Equatable {
        /// `invalid_dpop_proof`.
        case invalid(String)
        /// `use_dpop_nonce`: retry with the nonce of the `DPoP-Nonce` header.
        case useNonce
        /// The proof could not be recorded (the database did not answer): not the proof's fault, a 503.
        case unavailable(DependencyUnavailable)
    }

    /// The proof of `request`, checked against `url` and `accessToken`; `nil` when the request carries none.
    func proof(of request: Request, url: String, accessToken: String? = nil) async throws(Failure) -> DPoPProof? {
        let values = request.headers[values: Self.header]
        guard let value = values.first else { return nil }
        guard values.count == 1 else { throw .invalid("Send one DPoP header") }
        let now = clock.now
        let proof: DPoPProof
        do {
            proof = try await DPoPProof.verify(
                value, expected: .init(method: request.method.rawValue, url: url, accessToken: accessToken), now: now)
        } catch { throw .invalid(error.message) }
        if let nonce = proof.nonce {
            guard nonces.isValid(nonce, at: now) else { throw .useNonce }
        } else if nonceRequired {
            throw .useNonce
        }
        let fresh: Bool
        do {
            fresh = try await usedProofs.markUsed(
                digest: SecretDigest.hex("dpop\u{0}" + proof.thumbprint + "\u{0}" + proof.id),
                expiresAt: proof.issuedAt.addingTimeInterval(DPoPProof.maximumAge + DPoPProof.futureLeeway), now: now)
        } catch let error as DependencyUnavailable {
            throw .unavailable(error)
        } catch {
            throw .unavailable(DependencyUnavailable("the database", detail: "recording a DPoP proof: \(error)"))
        }
        guard fresh else { throw .invalid("The DPoP proof was used before (jti)") }
        return proof
    }

    /// The `DPoP-Nonce` header of answers to DPoP requests when nonces are required, so that a client has the next
    /// nonce before it is asked for it. Without `DPOP_NONCE_REQUIRED` no nonce is handed out (RFC 9449 §11.3: once
    /// one is, proofs without it must be refused).
    func nonceHeader() -> HTTPFields { nonceRequired ? [Self.nonceHeader: nonces.current(at: clock.now)] : [:] }

    /// The header of a `use_dpop_nonce` answer, which always carries a nonce.
    private func requiredNonceHeader() -> HTTPFields { [Self.nonceHeader: nonces.current(at: clock.now)] }

    /// The error `/token` answers with: 400 `invalid_dpop_proof` or `use_dpop_nonce` (RFC 9449 §5, §8).
    func tokenEndpointError(_ failure: Failure) -> ErrorResponse {
        switch failure {
        case .invalid(let message):
            ErrorResponse(status: .badRequest, code: "invalid_dpop_proof", message: message, headers: nonceHeader())
        case .useNonce:
            ErrorResponse(
                status: .badRequest, code: "use_dpop_nonce",
                message: "Send the DPoP proof again with the nonce of the DPoP-Nonce header",
                headers: requiredNonceHeader())
        case .unavailable(let reason): Self.unavailable(reason)
        }
    }

    /// 503 `temporarily_unavailable` with `Retry-After`: the same proof (a new one, with a new `jti`) may be sent again.
    private static func unavailable(_ reason: DependencyUnavailable) -> ErrorResponse {
        ErrorResponse(
            status: .serviceUnavailable, code: "temporarily_unavailable",
            message: "The DPoP proof cannot be checked now: \(reason.dependency) is unavailable; retry in "
                + "\(reason.retryAfter) s",
            headers: [.retryAfter: String(reason.retryAfter)])
    }

    /// The error the MCP endpoints answer with: 401 and a `DPoP` challenge (RFC 9449 §7.1, §9).
    func resourceError(_ failure: Failure) -> ErrorResponse {
        let algorithms = Self.algorithmNames.joined(separator: " ")
        switch failure {
        case .invalid(let message):
            var headers = nonceHeader()
            headers[.wwwAuthenticate] =
                #"DPoP error="invalid_dpop_proof", error_description="\#(OAuthErrorText.safe(message))", algs="\#(algorithms)""#
            return ErrorResponse(status: .unauthorized, code: "invalid_dpop_proof", message: message, headers: headers)
        case .useNonce:
            var headers = requiredNonceHeader()
            headers[.wwwAuthenticate] =
                #"DPoP error="use_dpop_nonce", error_description="Authorization server requires nonce in DPoP proof", algs="\#(algorithms)""#
            return ErrorResponse(
                status: .unauthorized, code: "use_dpop_nonce",
                message: "Send the DPoP proof again with the nonce of the DPoP-Nonce header", headers: headers)
        case .unavailable(let reason):
            return Self.unavailable(reason)
        }
    }
}
