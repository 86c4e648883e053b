import Foundation
import JSON

/// A JWS in compact serialization (`header.payload.signature`), split and decoded but not verified.
struct CompactJWS {
    let header: [String: JSONValue]
    let payloadJSON: [UInt8]
    let signature: [UInt8]
    /// The ASCII bytes the signature covers: `base64url(header) "." base64url(payload)`.
    let signingInput: ArraySlice<UInt8>

    /// Splits and decodes `token`. Every structural problem is ``BearerAuthError/malformedToken``.
    init(_ token: String) throws(BearerAuthError) {
        let bytes = Array(token.utf8)
        let dots = bytes.indices.filter { bytes[$0] == UInt8(ascii: ".") }
        guard dots.count == 2 else {
            let message =
                dots.count == 4
                ? "Encrypted tokens (JWE) are not accepted" : "The access token does not have three segments"
            throw BearerAuthError.malformedToken.with(message: message)
        }
        let headerPart = bytes[..<dots[0]]
        let payloadPart = bytes[(dots[0] + 1)..<dots[1]]
        let signaturePart = bytes[(dots[1] + 1)...]
        // An empty signature is left for the verifier to refuse: `alg` is checked first, so that an unsecured
        // token (`alg: none`) is reported as such.
        guard !headerPart.isEmpty, !payloadPart.isEmpty else {
            throw BearerAuthError.malformedToken.with(message: "The access token has an empty segment")
        }
        guard let headerJSON = Self.decode(headerPart), let payloadJSON = Self.decode(payloadPart),
            let signature = Self.decode(signaturePart)
        else {
            throw BearerAuthError.malformedToken.with(message: "The access token is not valid base64url")
        }
        guard case .object(let header)? = try? JSONValue(parsing: headerJSON) else {
            throw BearerAuthError.malformedToken.with(message: "The access token's header is not a JSON object")
        }
        self.header = header
        self.payloadJSON = payloadJSON
        self.signature = signature
        self.signingInput = bytes[..<dots[1]]
    }

    /// The payload's claims. Decoded only after the signature verified.
    func claims() throws(BearerAuthError) -> [String: JSONValue] {
        guard case .object(let claims)? = try? JSONValue(parsing: payloadJSON) else {
            throw BearerAuthError.malformedToken.with(message: "The access token's payload is not a JSON object")
        }
        return claims
    }

    private static func decode(_ part: ArraySlice<UInt8>) -> [UInt8]? {
        if part.isEmpty { return [] }
        guard let text = String(bytes: part, encoding: .ascii) else { return nil }
        return Base64URL.decode(text)
    }
}
