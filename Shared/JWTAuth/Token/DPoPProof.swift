import Crypto
import Foundation
import JSON

/// A verified DPoP proof (RFC 9449 §4.3): a JWT the client signs with the key its tokens are bound to, for one HTTP
/// request. What is checked here is the proof itself; the caller checks `jti` against its replay cache, `nonce`
/// against the nonces it issued, and ``thumbprint`` against the key a token is bound to.
public struct DPoPProof: Sendable {
    /// The RFC 7638 SHA-256 thumbprint of the proof's public key (`jkt`), base64url.
    public let thumbprint: String
    /// The proof's unique id.
    public let id: String
    public let issuedAt: Date
    /// The server-provided nonce the proof carries, if any.
    public let nonce: String?

    /// What a proof must match.
    public struct Expectation: Sendable {
        /// The request's method (`htm`).
        public var method: String
        /// The request's URL without query and fragment (`htu`).
        public var url: String
        /// The access token presented with the proof, whose hash `ath` must carry; `nil` at the token endpoint.
        public var accessToken: String?

        public init(method: String, url: String, accessToken: String? = nil) {
            self.method = method
            self.url = url
            self.accessToken = accessToken
        }
    }

    /// The algorithms a proof may use: asymmetric only (RFC 9449 §4.3, item 5).
    public static let algorithms: Set<SignatureAlgorithm> = Set(SignatureAlgorithm.all)
    /// How old a proof may be (`iat`), and how far in the future, for clock skew.
    public static let maximumAge: TimeInterval = 300
    public static let futureLeeway: TimeInterval = 60
    /// Proofs longer than this are refused before decoding.
    public static let maximumSize = 8 * 1024

    /// Verifies `proof` against `expected` at `now`.
    public static func verify(_ proof: String, expected: Expectation, now: Date) async throws(DPoPError) -> DPoPProof {
        guard proof.utf8.count <= maximumSize else { throw DPoPError("The DPoP proof is too large") }
        let jws: CompactJWS
        do { jws = try CompactJWS(proof) } catch { throw DPoPError("The DPoP proof is not a JWT") }
        guard jws.header["typ"]?.stringValue?.lowercased() == "dpop+jwt" else {
            throw DPoPError("The DPoP proof's typ must be dpop+jwt")
        }
        guard let name = jws.header["alg"]?.stringValue, let algorithm = SignatureAlgorithm(rawValue: name),
            algorithms.contains(algorithm)
        else { throw DPoPError("The DPoP proof's alg must be one of \(algorithms.map(\.rawValue).sorted())") }
        guard case .object(let jwk)? = jws.header["jwk"] else { throw DPoPError("The DPoP proof has no jwk header") }
        guard !jwk.keys.contains(where: { ["d", "p", "q", "dp", "dq", "qi", "k", "oth"].contains($0) }) else {
            throw DPoPError("The DPoP proof's jwk must be a public key")
        }
        let key: VerificationKey
        do {
            key = try await KeySet.parseKey(.object(jwk.filter { $0.key != "kid" }), allowedAlgorithms: [algorithm])
        } catch { throw DPoPError("The DPoP proof's jwk is not a usable \(algorithm) public key") }
        guard key.isValidSignature(jws.signature, of: jws.signingInput, algorithm: algorithm) else {
            throw DPoPError("The DPoP proof's signature is invalid")
        }
        let claims: [String: JSONValue]
        do { claims = try jws.claims() } catch { throw DPoPError("The DPoP proof's payload is not a JSON object") }
        guard let id = claims["jti"]?.stringValue, !id.isEmpty, id.utf8.count <= 256 else {
            throw DPoPError("The DPoP proof has no jti")
        }
        guard claims["htm"]?.stringValue == expected.method else {
            throw DPoPError("The DPoP proof is for another method (htm)")
        }
        guard let htu = claims["htu"]?.stringValue, Self.sameURL(htu, expected.url) else {
            throw DPoPError("The DPoP proof is for another URL (htu)")
        }
        guard let seconds = claims["iat"]?.doubleValue, seconds.isFinite else {
            throw DPoPError("The DPoP proof has no iat")
        }
        let issuedAt = Date(timeIntervalSince1970: seconds)
        guard now.timeIntervalSince(issuedAt) <= maximumAge, issuedAt.timeIntervalSince(now) <= futureLeeway else {
            throw DPoPError("The DPoP proof is too old or from the future (iat)")
        }
        if let token = expected.accessToken {
            let hash = Base64URL.encode(SHA256.hash(data: Data(token.utf8)))
            guard let ath = claims["ath"]?.stringValue, Self.constantTimeEqual(Array(ath.utf8), Array(hash.utf8))
            else { throw DPoPError("The DPoP proof is not for this access token (ath)") }
        }
        guard let thumbprint = Self.thumbprint(of: jwk) else {
            throw DPoPError("The DPoP proof's jwk cannot be thumbprinted")
        }
        if let nonce = claims["nonce"], nonce.stringValue == nil {
            throw DPoPError("The DPoP proof's nonce is not a string")
        }
        return DPoPProof(thumbprint: thumbprint, id: id, issuedAt: issuedAt, nonce: claims["nonce"]?.stringValue)
    }

    /// The RFC 7638 thumbprint of a public RSA or EC JWK: SHA-256 over its required members in lexicographic order.
    public static func thumbprint(of jwk: [String: JSONValue]) -> String? {
        let members: [String]
        switch jwk["kty"]?.stringValue {
        case "RSA": members = ["e", "kty", "n"]
        case "EC": members = ["crv", "kty", "x", "y"]
        default: return nil
        }
        var canonical = "{"
        for (index, member) in members.enumerated() {
            guard let value = jwk[member]?.stringValue else { return nil }
            canonical +=
                (index == 0 ? "" : ",") + "\"\(member)\":"
                + String(decoding: JSONValue.string(value).serialized(), as: UTF8.self)
        }
        canonical += "}"
        return Base64URL.encode(SHA256.hash(data: Data(canonical.utf8)))
    }

    private static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        return zip(a, b).reduce(0) { $0 | ($1.0 ^ $1.1) } == 0
    }

    /// RFC 9449 §4.3 item 9: `htu` compared without query and fragment, scheme and host case-insensitively.
    static func sameURL(_ a: String, _ b: String) -> Bool {
        func normalized(_ text: String) -> String? {
            guard var components = URLComponents(string: text), components.host != nil else { return nil }
            components.query = nil
            components.fragment = nil
            components.scheme = components.scheme?.lowercased()
            components.host = components.host?.lowercased()
            if components.path.isEmpty { components.path = "/" }
            if (components.scheme == "https" && components.port == 443)
                || (components.scheme == "http" && components.port == 80)
            {
                components.port = nil
            }
            return components.string
        }
        guard let left = normalized(a), let right = normalized(b) else { return false }
        return left == right
    }
}

/// Why a DPoP proof was refused (`invalid_dpop_proof`, RFC 9449 §7.1).
public struct DPoPError: Error, Equatable, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
}
