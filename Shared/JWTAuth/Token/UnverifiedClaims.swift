import JSON
/// The claims of a JWT read before anything about it is checked: only to choose which verifier, or which client's
/// keys, must check it. Nothing read here may be trusted until that verification succeeds.
public enum UnverifiedClaims {
    /// The payload of `token`, a compact JWS.
    ///
    /// - Throws: ``BearerAuthError/malformedToken`` when it is not a JWS with a JSON object payload.
    public static func read(_ token: String) throws(BearerAuthError) -> [String: JSONValue] {
        try CompactJWS(token).claims()
    }
}
