import Foundation
import JWTAuth

/// A validated authorization request waiting for the user's decision, carried by the consent form itself rather than
/// stored: encrypted and authenticated (AES-GCM under `GATEWAY_ENCRYPTION_KEY`), so the browser can neither read nor
/// change it, and bound to the browser by the digest of a cookie. Showing the consent page writes nothing, so an
/// anonymous flood of `/authorize` requests cannot fill the database.
struct ConsentTicket: Codable, Sendable {
    var request: ClientAuthorizationRequest
    /// Digest of the `gw_consent` cookie set with the page.
    var bindingDigest: String
    /// Digest of the CSRF token in the form.
    var csrfDigest: String
    var expiresAt: Date

    private static let context = "consent-ticket v1"

    /// The ticket as the form's `request_id`: `<key id>.<base64url of nonce, ciphertext and tag>`.
    func sealed(with cipher: TokenCipher) throws -> String {
        let json = String(decoding: try JSONEncoder().encode(self), as: UTF8.self)
        let sealed = try cipher.seal(json, context: Self.context)
        return sealed.keyID + "." + Base64URL.encode(Array(sealed.combined))
    }

    /// The ticket in a form's `request_id`; `nil` when it does not open (altered, from before a key change, or not a
    /// ticket at all) or has expired.
    static func open(_ text: String, with cipher: TokenCipher, now: Date) -> ConsentTicket? {
        let parts = text.split(separator: ".", maxSplits: 1)
        guard parts.count == 2, let combined = Base64URL.decode(String(parts[1])),
            let json = try? cipher.open(
                SealedValue(keyID: String(parts[0]), combined: Data(combined)), context: context),
            let ticket = try? JSONDecoder().decode(ConsentTicket.self, from: Data(json.utf8)),
            ticket.expiresAt > now
        else { return nil }
        return ticket
    }
}
