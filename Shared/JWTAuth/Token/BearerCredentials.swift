/// Reads a bearer token from `Authorization` header values (RFC 6750 §2.1).
///
/// The scheme is matched case-insensitively; exactly one token of token68 characters must follow it. A request with no
/// `Authorization` header, or one that uses another scheme (such as `Basic`), has no bearer credentials
/// (``BearerAuthError/missingToken``). A header that does not carry exactly one credential is
/// ``BearerAuthError/malformedAuthorization`` (400): several headers, no token, two tokens. A single token with
/// characters outside token68 is a malformed token, ``BearerAuthError/malformedToken`` (401).
public enum BearerCredentials {
    /// Extracts the token from the values of every `Authorization` header of a request.
    public static func token(fromAuthorizationHeaders values: [String]) throws(BearerAuthError) -> String {
        guard let value = values.first else { throw .missingToken }
        guard values.count == 1 else {
            throw BearerAuthError.malformedAuthorization.with(message: "Send exactly one Authorization header")
        }
        return try token(fromAuthorization: value)
    }

    /// Extracts the token from one `Authorization` header value.
    public static func token(fromAuthorization value: String) throws(BearerAuthError) -> String {
        let trimmed = value.drop(while: { $0 == " " || $0 == "\t" })
        let scheme = trimmed.prefix(while: { $0 != " " && $0 != "\t" })
        guard scheme.lowercased() == "bearer" else {
            // Another authentication scheme: the request carries no bearer credentials (RFC 6750 §3.1).
            if scheme.isEmpty {
                throw BearerAuthError.malformedAuthorization.with(message: "The Authorization header is empty")
            }
            throw BearerAuthError.missingToken.with(
                message: "The Authorization header must use the Bearer scheme: 'Authorization: Bearer <token>'")
        }
        let rest = trimmed.dropFirst(scheme.count)
        guard rest.first == " " else {
            throw BearerAuthError.malformedAuthorization.with(
                message: "The Authorization header has no token after 'Bearer'")
        }
        let token = rest.drop(while: { $0 == " " }).reversed().drop(while: { $0 == " " || $0 == "\t" }).reversed()
        let tokenText = String(token)
        guard !tokenText.isEmpty else {
            throw BearerAuthError.malformedAuthorization.with(
                message: "The Authorization header has no token after 'Bearer'")
        }
        guard isToken68(tokenText) else {
            if tokenText.contains(where: { $0 == " " || $0 == "\t" || $0 == "," }) {
                throw BearerAuthError.malformedAuthorization.with(message: "Send exactly one bearer token")
            }
            // One token, but not one a server could have issued: a malformed token (RFC 6750 §3.1), not a
            // malformed request.
            throw BearerAuthError.malformedToken.with(
                message: "The access token contains characters a token cannot contain")
        }
        return tokenText
    }

    /// Whether `text` matches `token68 = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="` (RFC 7235 §2.1).
    static func isToken68(_ text: String) -> Bool {
        var sawPadding = false
        var count = 0
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "="):
                sawPadding = true
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
                UInt8(ascii: "~"), UInt8(ascii: "+"), UInt8(ascii: "/"):
                if sawPadding { return false }
                count += 1
            default:
                return false
            }
        }
        return count > 0
    }
}
