import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import JWTAuth

/// Signs cookie values with HMAC-SHA256 under a key derived from `COOKIE_ENCRYPTION_KEY`, and builds the cookies.
///
/// Over https, cookies are `__Host-` prefixed and `Secure` (a `__Host-` cookie must be Secure, path `/`, without
/// domain, so a sibling subdomain cannot set or read it). Over plain http (local development) they keep the same
/// name without the prefix and without `Secure`: Safari and non-browser clients (the MCP SDKs' test harnesses,
/// Python's cookie jar) do not send Secure cookies to `http://localhost`.
struct CookieSigner: Sendable {
    private let key: SymmetricKey
    let secure: Bool

    init(secret: String, secure: Bool) {
        self.key = HKDF<SHA256>.deriveKey(
            inputKeyMaterial: SymmetricKey(data: Data(secret.utf8)), salt: Data("mcp-gateway".utf8),
            info: Data("cookie-signing v1".utf8), outputByteCount: 32)
        self.secure = secure
    }

    /// `base64url(payload).base64url(HMAC(name, payload))`: the name is signed too, so a value cannot be moved
    /// from one cookie to another.
    func sign(_ payload: [UInt8], name: String) -> String {
        let encoded = Base64URL.encode(payload)
        return encoded + "." + Base64URL.encode(mac(encoded, name: name))
    }

    /// The payload of a value signed by ``sign(_:name:)``; `nil` when the signature does not verify.
    func verify(_ value: String, name: String) -> [UInt8]? {
        let parts = value.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, let signature = Base64URL.decode(parts[1]),
            HMAC<SHA256>.isValidAuthenticationCode(signature, authenticating: Data(parts[0].utf8), using: macKey(name))
        else { return nil }
        return Base64URL.decode(parts[0])
    }

    /// The cookie's name as sent: `__Host-<name>` over https.
    func cookieName(_ name: String) -> String { secure ? "__Host-" + name : name }

    /// A `Set-Cookie` value: HttpOnly, SameSite=Lax (the cookie must come back on the top-level redirect from the
    /// identity provider), path `/`, and Secure over https.
    func setCookie(_ name: String, value: String, maxAge: Int) -> String {
        var cookie = "\(cookieName(name))=\(value); Path=/; Max-Age=\(maxAge); HttpOnly; SameSite=Lax"
        if secure { cookie += "; Secure" }
        return cookie
    }

    /// A `Set-Cookie` value that deletes the cookie.
    func clearCookie(_ name: String) -> String { setCookie(name, value: "", maxAge: 0) }

    /// The value of cookie `name` in the request.
    func cookie(_ name: String, in request: Request) -> String? {
        request.cookies[cookieName(name)]?.value
    }

    private func mac(_ encoded: String, name: String) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: Data(encoded.utf8), using: macKey(name)))
    }

    private func macKey(_ name: String) -> SymmetricKey {
        SymmetricKey(data: HMAC<SHA256>.authenticationCode(for: Data(name.utf8), using: key))
    }
}
