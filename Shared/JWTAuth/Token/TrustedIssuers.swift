import JSON
/// Verifies access tokens of several issuers, each with its own ``JWTVerifier`` (keys, audiences, accepted types): an
/// API that trusts an identity provider and a gateway that signs tokens for it, and nothing else.
///
/// The token's `iss`, read before any signature is checked, only chooses the verifier; that verifier then checks the
/// token completely, `iss` included. A token naming any other issuer is refused without a key being fetched.
public struct TrustedIssuers: Sendable {
    /// The verifiers, one per issuer, in the order configured.
    public let verifiers: [JWTVerifier]
    private let byIssuer: [String: JWTVerifier]

    /// Trusts the issuers of `verifiers` (the first verifier of an issuer named twice wins).
    public init(_ verifiers: [JWTVerifier]) {
        self.verifiers = verifiers
        self.byIssuer = Dictionary(
            verifiers.map { ($0.configuration.issuer, $0) }, uniquingKeysWith: { first, _ in first })
    }

    /// Verifies `token` with the verifier of its issuer.
    public func verify(_ token: String) async throws(BearerAuthError) -> VerifiedToken {
        if verifiers.count == 1 { return try await verifiers[0].verify(token) }
        guard let largest = verifiers.map(\.configuration.maximumTokenSize).max(), token.utf8.count <= largest else {
            throw .tokenTooLarge
        }
        guard let issuer = try UnverifiedClaims.read(token)["iss"]?.stringValue, let verifier = byIssuer[issuer] else {
            throw BearerAuthError.invalidIssuer.with(message: "The access token's issuer is not one this API trusts")
        }
        return try await verifier.verify(token)
    }
}
