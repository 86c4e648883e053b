/// Why a request could not be authenticated with a bearer token, in the terms of RFC 6750 §3.1.
///
/// Every verification failure of this library is one of these. Its `message` is written for the client developer and
/// never contains the token. Compare errors with `==`: two errors are equal when they are the same kind of failure (and,
/// for `insufficientScope`, need the same scope), whatever their messages say.
///
/// ```swift
/// do {
///     let token = try await verifier.verify(bearer)
/// } catch let error as BearerAuthError {
///     response.headers[.wwwAuthenticate] = error.challenge(realm: "todos-api")
///     response.status = .init(code: error.httpStatus)
/// }
/// ```
public struct BearerAuthError: Error, Hashable, CustomStringConvertible, Sendable {
    /// The RFC 6750 error codes.
    public enum Code: String, Sendable {
        /// The `Authorization` header is malformed (400).
        case invalidRequest = "invalid_request"
        /// The token is expired, revoked, malformed, or invalid for other reasons (401).
        case invalidToken = "invalid_token"
        /// The token is valid but lacks the scope the request needs (403).
        case insufficientScope = "insufficient_scope"
    }

    private enum Kind: Hashable, Sendable {
        case missingToken
        case malformedAuthorization
        case tokenTooLarge
        case malformedToken
        case unsupportedAlgorithm
        case unsupportedTokenType
        case missingKeyID
        case unknownKey
        case invalidSignature
        case expired
        case notYetValid
        case issuedInFuture
        case missingExpiry
        case missingSubject
        case invalidIssuer
        case invalidAudience
        case insufficientScope
        case keysUnavailable
        case rejected
    }

    private let kind: Kind
    /// A sentence for the client developer saying what was wrong. Never contains the token.
    public let message: String
    /// For `insufficientScope`: the scope the request needs.
    public let requiredScope: ScopeSet?

    private init(_ kind: Kind, _ message: String, requiredScope: ScopeSet? = nil) {
        self.kind = kind
        self.message = message
        self.requiredScope = requiredScope
    }

    /// The RFC 6750 error code; `nil` when the request carried no bearer credentials (RFC 6750 §3.1 says not to
    /// include an error code then) or when the failure is on the server's side (`keysUnavailable`).
    public var code: Code? {
        switch kind {
        case .missingToken, .keysUnavailable: nil
        case .malformedAuthorization: .invalidRequest
        case .insufficientScope: .insufficientScope
        default: .invalidToken
        }
    }

    /// The HTTP status to answer with: 400, 401, 403, or 503 when the signing keys could not be obtained at all.
    public var httpStatus: Int {
        switch kind {
        case .malformedAuthorization: 400
        case .insufficientScope: 403
        case .keysUnavailable: 503
        default: 401
        }
    }

    public var description: String {
        "\(code?.rawValue ?? (kind == .keysUnavailable ? "unavailable" : "no_token")): \(message)"
    }

    public static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.kind == rhs.kind && lhs.requiredScope == rhs.requiredScope
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(kind)
        hasher.combine(requiredScope)
    }
}

// MARK: - The failures

extension BearerAuthError {
    /// No bearer credentials at all: no `Authorization` header, or one with another scheme.
    public static let missingToken = Self(
        .missingToken, "A bearer token is required: send 'Authorization: Bearer <token>'")
    /// The `Authorization` header is not a well-formed bearer credential.
    public static let malformedAuthorization = Self(.malformedAuthorization, "The Authorization header is malformed")
    /// The token is longer than the verifier accepts.
    public static let tokenTooLarge = Self(.tokenTooLarge, "The access token is too large")
    /// The token is not a JWS in compact serialization.
    public static let malformedToken = Self(.malformedToken, "The access token is not a well-formed JWT")
    /// The token's `alg` is not in the allow-list (this includes `none` and every HMAC algorithm).
    public static let unsupportedAlgorithm = Self(
        .unsupportedAlgorithm, "The access token's signing algorithm is not accepted")
    /// The token's `typ` header is neither `JWT` nor `at+jwt`, or it has a `crit` header.
    public static let unsupportedTokenType = Self(.unsupportedTokenType, "The access token's type is not accepted")
    /// The token's header has no `kid`.
    public static let missingKeyID = Self(.missingKeyID, "The access token's header names no signing key (kid)")
    /// No key of the issuer's key set has the token's `kid`, even after refreshing the set.
    public static let unknownKey = Self(.unknownKey, "The access token was signed with an unknown key")
    /// The signature does not verify with the key the token names.
    public static let invalidSignature = Self(.invalidSignature, "The access token's signature is invalid")
    /// `exp` has passed (beyond the leeway).
    public static let expired = Self(.expired, "The access token expired")
    /// `nbf` is still in the future (beyond the leeway).
    public static let notYetValid = Self(.notYetValid, "The access token is not valid yet")
    /// `iat` is in the future (beyond the leeway).
    public static let issuedInFuture = Self(.issuedInFuture, "The access token was issued in the future")
    /// The token has no numeric `exp`.
    public static let missingExpiry = Self(.missingExpiry, "The access token has no expiry (exp)")
    /// The token has no `sub`.
    public static let missingSubject = Self(.missingSubject, "The access token has no subject (sub)")
    /// `iss` is not exactly the configured issuer.
    public static let invalidIssuer = Self(.invalidIssuer, "The access token was issued by another issuer")
    /// `aud` names none of the configured audiences.
    public static let invalidAudience = Self(.invalidAudience, "The access token is not meant for this API (audience)")
    /// The issuer's signing keys could not be fetched and none are cached.
    public static let keysUnavailable = Self(.keysUnavailable, "The issuer's signing keys are unavailable; retry later")

    /// The token is not accepted for another reason that `message` states: unknown, revoked, or not usable here
    /// (services with opaque tokens or extra rules use this).
    public static func rejected(_ message: String) -> Self {
        Self(.rejected, message)
    }

    /// The token is valid but lacks `scope`.
    public static func insufficientScope(_ scope: ScopeSet) -> Self {
        Self(.insufficientScope, "The access token lacks the scope \(scope)", requiredScope: scope)
    }

    /// The same kind of failure with a more precise message.
    public func with(message: String) -> Self {
        Self(kind, message, requiredScope: requiredScope)
    }
}
