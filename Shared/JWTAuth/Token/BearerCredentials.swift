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

    /// Whether `text` matches `token68 = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="` (RFC 7235 §2.1).
    ///
    /// Every request's token goes through here, byte by byte: the characters are looked up in two 64-bit masks (bit
    /// `c` of the first for `c` below 64, bit `c - 64` of the second) rather than tried against each range in turn.
    static func isToken68(_ bytes: some Sequence<UInt8>) -> Bool {
        // "+", "-", ".", "/" and "0"..."9".
        let below64: UInt64 = 0x03ff_e800_0000_0000
        // "A"..."Z", "_", "a"..."z" and "~".
        let from64: UInt64 = 0x47ff_fffe_87ff_fffe
        var sawPadding = false
        var count = 0
        for byte in bytes {
            if byte == UInt8(ascii: "=") {
                sawPadding = true
                continue
            }
            let mask = byte < 64 ? below64 >> byte : byte < 128 ? from64 >> (byte &- 64) : 0
            guard mask & 1 == 1, !sawPadding else { return false }
            count += 1
        }
        return count > 0
    }
}
