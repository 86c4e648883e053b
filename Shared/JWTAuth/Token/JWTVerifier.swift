import Foundation
import JSON

/// Verifies JWT access tokens (and ID tokens) signed by one issuer.
///
/// The order of checks is deliberate: size, structure and header first (`alg` in the allow-list, a `kid`, an
/// acceptable `typ`, no `crit`), then the key the `kid` names (never a default key), then the signature, and only then
/// the claims: `iss` exactly, `aud` containing a configured audience, `exp` required, `nbf` and `iat` honoured, all
/// with the configured leeway. A failure throws one ``BearerAuthError``; nothing here logs or returns the token.
public struct JWTVerifier: Sendable {
    /// What a token must satisfy.
    public struct Configuration: Sendable {
        /// The exact `iss`, e.g. `https://acme.us.auth0.com/` (Auth0 issuers end with a slash).
        public var issuer: String
        /// The accepted audiences: the token's `aud` must contain at least one.
        public var audiences: Set<String>
        /// The accepted `alg` values. Defaults to RS256.
        public var allowedAlgorithms: Set<SignatureAlgorithm>
        /// Tolerance for clock skew on `exp`, `nbf` and `iat`. Defaults to 60 seconds.
        public var leeway: TimeInterval
        /// Tokens longer than this many bytes are refused before decoding. Defaults to 16 KiB.
        public var maximumTokenSize: Int
        /// Whether `sub` is required (RFC 9068 requires it in access tokens). Defaults to `true`.
        public var requireSubject: Bool
        /// How many verified tokens to remember, so that a token seen again skips the signature check until its `exp`.
        /// 0 disables the cache. Defaults to 4096.
        public var cacheCapacity: Int
        /// The `typ` header values accepted, lower-cased; a token without `typ` is accepted. Defaults to
        /// ``JWTVerifier/accessTokenTypes``.
        public var acceptedTypes: Set<String>
        /// Whether a token without `typ` is refused: for tokens whose type is how they are told apart from other JWTs
        /// of the same issuer (an identity assertion, the MCP gateway's `at+jwt`). Defaults to `false`.
        public var requiresType: Bool
        /// Whether a token without `kid` may be verified with the issuer's only key for its algorithm (OpenID Connect
        /// Core §10.1 lets a provider that publishes one key leave `kid` out of ID tokens). Access tokens must name
        /// their key, so defaults to `false`.
        public var allowsMissingKeyID: Bool

        /// Creates a configuration for tokens of `issuer` meant for one of `audiences`.
        public init(
            issuer: String,
            audiences: Set<String>,
            allowedAlgorithms: Set<SignatureAlgorithm> = [.rs256],
            leeway: TimeInterval = 60,
            maximumTokenSize: Int = 16 * 1024,
            requireSubject: Bool = true,
            cacheCapacity: Int = 4096,
            acceptedTypes: Set<String> = JWTVerifier.accessTokenTypes,
            requiresType: Bool = false,
            allowsMissingKeyID: Bool = false
        ) {
            self.issuer = issuer
            self.audiences = audiences
            self.allowedAlgorithms = allowedAlgorithms
            self.leeway = leeway
            self.maximumTokenSize = maximumTokenSize
            self.requireSubject = requireSubject
            self.cacheCapacity = cacheCapacity
            self.acceptedTypes = acceptedTypes
            self.requiresType = requiresType
            self.allowsMissingKeyID = allowsMissingKeyID
        }
    }

    /// The `typ` header values accepted on access tokens (compared case-insensitively, RFC 7515 §4.1.9 and RFC 9068
    /// §2.1).
    public static let accessTokenTypes: Set<String> = ["jwt", "at+jwt", "application/jwt", "application/at+jwt"]
    /// The `typ` header values accepted on ID tokens: an access token (`at+jwt`, RFC 9068 §2.1) must not pass for one.
    public static let idTokenTypes: Set<String> = ["jwt", "application/jwt"]

    /// The configuration this verifier enforces.
    public let configuration: Configuration
    private let keys: any VerificationKeyProvider
    private let clock: any WallClock
    private let cache: VerifiedTokenCache?

    /// Creates a verifier that takes keys from `keys`, typically a ``JWKSCache``.
    public init(configuration: Configuration, keys: any VerificationKeyProvider, clock: any WallClock = SystemClock()) {
        self.configuration = configuration
        self.keys = keys
        self.clock = clock
        self.cache = configuration.cacheCapacity > 0 ? VerifiedTokenCache(capacity: configuration.cacheCapacity) : nil
    }

    /// Verifies `token` and returns its claims.
    public func verify(_ token: String) async throws(BearerAuthError) -> VerifiedToken {
        guard token.utf8.count <= configuration.maximumTokenSize else { throw .tokenTooLarge }
        let now = clock.now
        if let cached = cache?.lookup(token),
            now.timeIntervalSince(cached.expiresAt) < configuration.leeway,
            keys.containsKey(withID: cached.keyID)
        {
            return cached
        }

        let jws = try CompactJWS(token)
        let (algorithm, named) = try checkHeader(jws.header)
        let key: VerificationKey
        if let named {
            key = try await keys.key(withID: named)
        } else {
            let candidates = try await keys.keys(for: algorithm)
            guard candidates.count == 1, let only = candidates.first else {
                throw BearerAuthError.missingKeyID.with(
                    message: "The token names no key (kid) and the issuer publishes \(candidates.count) keys for "
                        + "\(algorithm)")
            }
            key = only
        }
        let keyID = key.keyID
        guard key.algorithms.contains(algorithm) else {
            throw BearerAuthError.unsupportedAlgorithm.with(message: "The signing key does not allow \(algorithm)")
        }
        guard key.isValidSignature(jws.signature, of: jws.signingInput, algorithm: algorithm) else {
            throw .invalidSignature
        }
        let verified = try checkClaims(jws, keyID: keyID, algorithm: algorithm, now: now)
        cache?.insert(verified, for: token, now: now)
        return verified
    }

    private func checkHeader(_ header: [String: JSONValue]) throws(BearerAuthError) -> (SignatureAlgorithm, String?) {
        guard let name = header["alg"]?.stringValue, let algorithm = SignatureAlgorithm(rawValue: name),
            configuration.allowedAlgorithms.contains(algorithm)
        else { throw .unsupportedAlgorithm }
        if let typ = header["typ"] {
            guard let value = typ.stringValue, configuration.acceptedTypes.contains(value.lowercased()) else {
                throw .unsupportedTokenType
            }
        } else if configuration.requiresType {
            throw BearerAuthError.unsupportedTokenType.with(message: "The token has no type (typ)")
        }
        guard header["crit"] == nil else {
            throw BearerAuthError.unsupportedTokenType.with(message: "The access token has critical header extensions")
        }
        guard let kid = header["kid"] else {
            guard configuration.allowsMissingKeyID else { throw .missingKeyID }
            return (algorithm, nil)
        }
        guard let keyID = kid.stringValue, !keyID.isEmpty else { throw .missingKeyID }
        return (algorithm, keyID)
    }

    private func checkClaims(_ jws: CompactJWS, keyID: String, algorithm: SignatureAlgorithm, now: Date)
        throws(BearerAuthError) -> VerifiedToken
    {
        let claims = try jws.claims()
        guard let issuer = claims["iss"]?.stringValue, issuer == configuration.issuer else { throw .invalidIssuer }

        let audiences: [String]
        switch claims["aud"] {
        case .string(let audience): audiences = [audience]
        case .array: audiences = claims["aud"]?.stringArrayValue ?? []
        default: audiences = []
        }
        guard audiences.contains(where: configuration.audiences.contains) else { throw .invalidAudience }

        let leeway = configuration.leeway
        guard let expiry = try timestamp(claims["exp"], name: "exp") else { throw .missingExpiry }
        guard now.timeIntervalSince(expiry) < leeway else { throw .expired }
        let notBefore = try timestamp(claims["nbf"], name: "nbf")
        if let notBefore, notBefore.timeIntervalSince(now) > leeway { throw .notYetValid }
        let issuedAt = try timestamp(claims["iat"], name: "iat")
        if let issuedAt, issuedAt.timeIntervalSince(now) > leeway { throw .issuedInFuture }

        let subject = claims["sub"]?.stringValue
        if configuration.requireSubject, subject?.isEmpty ?? true { throw .missingSubject }
        // Who the token names ends up in logs, on terminals, in other tokens and as the key of a user's data: a
        // control character there is an attack on whoever reads them, never a real identity (ClaimText). Display
        // claims (name, email) are not refused for it, only not used (VerifiedToken.displayString).
        for name in Self.identityClaims {
            if let text = claims[name]?.stringValue, !ClaimText.isSafe(text) {
                throw BearerAuthError.malformedToken.with(
                    message: "The access token's \(name) claim contains control characters")
            }
        }

        return VerifiedToken(
            header: jws.header, claims: claims, payloadJSON: jws.payloadJSON, keyID: keyID, algorithm: algorithm,
            issuer: issuer, subject: subject, audiences: audiences, expiresAt: expiry, issuedAt: issuedAt,
            notBefore: notBefore, scopes: ScopeSet(claims: claims))
    }

    /// The claims that identify a person or client, refused when they hold control characters.
    static let identityClaims = ["sub", "client_id", "azp"]

    /// A NumericDate claim (RFC 7519 §2); `nil` when absent, an error when present but not a finite number.
    private func timestamp(_ value: JSONValue?, name: String) throws(BearerAuthError) -> Date? {
        guard let value else { return nil }
        guard let seconds = value.doubleValue, seconds.isFinite else {
            throw BearerAuthError.malformedToken.with(message: "The access token's \(name) claim is not a number")
        }
        return Date(timeIntervalSince1970: seconds)
    }
}
