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
    ///
    /// Works on the UTF-8 bytes: this runs on every authenticated request, and header values are ASCII.
    public static func token(fromAuthorization value: String) throws(BearerAuthError) -> String {
        var value = value
        let parsed = value.withUTF8 { Parse(bytes: $0) }
        switch parsed {
        case .empty:
            throw BearerAuthError.malformedAuthorization.with(message: "The Authorization header is empty")
        case .otherScheme:
            // Another authentication scheme: the request carries no bearer credentials (RFC 6750 §3.1).
            throw BearerAuthError.missingToken.with(
                message: "The Authorization header must use the Bearer scheme: 'Authorization: Bearer <token>'")
        case .noToken:
            throw BearerAuthError.malformedAuthorization.with(
                message: "The Authorization header has no token after 'Bearer'")
        case .severalTokens:
            throw BearerAuthError.malformedAuthorization.with(message: "Send exactly one bearer token")
        case .forbiddenCharacters:
            // One token, but not one a server could have issued: a malformed token (RFC 6750 §3.1), not a
            // malformed request.
            throw BearerAuthError.malformedToken.with(
                message: "The access token contains characters a token cannot contain")
        case .token(let token):
            return token
        }
    }

    private enum Parse {
        case empty, otherScheme, noToken, severalTokens, forbiddenCharacters
        case token(String)

        init(bytes: UnsafeBufferPointer<UInt8>) {
            func isBlank(_ byte: UInt8) -> Bool { byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") }
            var start = 0
            while start < bytes.count, isBlank(bytes[start]) { start += 1 }
            var schemeEnd = start
            while schemeEnd < bytes.count, !isBlank(bytes[schemeEnd]) { schemeEnd += 1 }
            guard schemeEnd > start else {
                self = .empty
                return
            }
            let bearer: [UInt8] = Array("bearer".utf8)
            guard schemeEnd - start == bearer.count,
                (0..<bearer.count).allSatisfy({ bytes[start + $0] | 0x20 == bearer[$0] })
            else {
                self = .otherScheme
                return
            }
            // RFC 7235: `credentials = auth-scheme [ 1*SP token68 ]`.
            guard schemeEnd < bytes.count, bytes[schemeEnd] == UInt8(ascii: " ") else {
                self = .noToken
                return
            }
            var tokenStart = schemeEnd
            while tokenStart < bytes.count, bytes[tokenStart] == UInt8(ascii: " ") { tokenStart += 1 }
            var tokenEnd = bytes.count
            while tokenEnd > tokenStart, isBlank(bytes[tokenEnd - 1]) { tokenEnd -= 1 }
            guard tokenEnd > tokenStart else {
                self = .noToken
                return
            }
            let token = UnsafeBufferPointer(rebasing: bytes[tokenStart..<tokenEnd])
            guard BearerCredentials.isToken68(token) else {
                let separators: Set<UInt8> = [UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: ",")]
                self = token.contains(where: separators.contains) ? .severalTokens : .forbiddenCharacters
                return
            }
            self = .token(String(decoding: token, as: UTF8.self))
        }
    }

    /// Whether `bytes` match `token68 = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="` (RFC 7235 §2.1).
    ///
    /// Every request's token goes through here, byte by byte, so the loop has no branch per byte: the trailing `=`s are
    /// set aside first, then each byte's entry in ``notToken68`` is or-ed in. (Testing each byte against the ranges in
    /// turn, or against two 64-bit masks, cost twice to five times as much on a JWT.)
    static func isToken68(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        var end = bytes.count
        while end > 0, bytes[end - 1] == UInt8(ascii: "=") { end -= 1 }
        guard end > 0 else { return false }
        return notToken68.withUnsafeBufferPointer { table in
            var misses: UInt8 = 0
            for byte in UnsafeBufferPointer(rebasing: bytes[..<end]) { misses |= table[Int(byte)] }
            return misses == 0
        }
    }

    /// 1 for every byte that is not a token68 character before the padding, 0 for the 68 that are.
    private static let notToken68: [UInt8] = (0...255).map { byte in
        switch UInt8(byte) {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
            UInt8(ascii: "~"), UInt8(ascii: "+"), UInt8(ascii: "/"):
            0
        default: 1
        }
    }

    /// ``isToken68(_:)-(UnsafeBufferPointer<UInt8>)`` of an array's bytes.
    static func isToken68(_ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBufferPointer { isToken68($0) }
    }
}
