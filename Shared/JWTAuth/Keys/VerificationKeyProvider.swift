/// Where a verifier gets the key a token names.
public protocol VerificationKeyProvider: Sendable {
    /// The key with this `kid`. A provider backed by a remote JWKS refreshes it (rate-limited) before giving up.
    ///
    /// - Throws: ``BearerAuthError/unknownKey`` when no such key exists, ``BearerAuthError/keysUnavailable`` when no
    ///   keys could be obtained at all.
    func key(withID keyID: String) async throws(BearerAuthError) -> VerificationKey

    /// Whether the current set still has this `kid`, without fetching anything. A cached verification of a token is
    /// only reused while its key is still published.
    func containsKey(withID keyID: String) -> Bool

    /// Every published key that verifies `algorithm`, with or without a `kid`: a token without `kid` is verified
    /// only when this is exactly one key.
    func keys(for algorithm: SignatureAlgorithm) async throws(BearerAuthError) -> [VerificationKey]
}

extension KeySet: VerificationKeyProvider {
    public func key(withID keyID: String) async throws(BearerAuthError) -> VerificationKey {
        guard let key = keys[keyID] else { throw .unknownKey }
        return key
    }

    public func containsKey(withID keyID: String) -> Bool { keys[keyID] != nil }

    public func keys(for algorithm: SignatureAlgorithm) async throws(BearerAuthError) -> [VerificationKey] {
        all.filter { $0.algorithms.contains(algorithm) }
    }
}
