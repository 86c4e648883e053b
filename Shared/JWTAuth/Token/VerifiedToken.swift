import Foundation
import JSON

/// A token whose signature, issuer, audience and lifetime have been verified, with every claim it carries.
public struct VerifiedToken: Sendable {
    /// The JOSE header.
    public let header: [String: JSONValue]
    /// Every claim of the payload, as the issuer wrote it.
    public let claims: [String: JSONValue]
    /// The payload exactly as signed (UTF-8 JSON): what `/api/me` returns, without re-encoding.
    public let payloadJSON: [UInt8]
    /// The `kid` of the key that verified the signature.
    public let keyID: String
    /// The algorithm that verified the signature.
    public let algorithm: SignatureAlgorithm
    /// `iss`.
    public let issuer: String
    /// `sub`, when present.
    public let subject: String?
    /// `aud`, as a list even when the token carries a single string.
    public let audiences: [String]
    /// `exp`.
    public let expiresAt: Date
    /// `iat`, when present.
    public let issuedAt: Date?
    /// `nbf`, when present.
    public let notBefore: Date?
    /// The union of `scope`, `scp` and `permissions`.
    public let scopes: ScopeSet

    /// A claim by name.
    public subscript(claim name: String) -> JSONValue? { claims[name] }

    /// A string claim by name; `nil` when absent or not a string.
    public func string(_ name: String) -> String? { claims[name]?.stringValue }

    /// A claim shown to people or written to logs (`name`, `email`, …), unless it holds a character of
    /// ``ClaimText/isUnsafe(_:)``: such a value is not used. (The token is not refused for it: a directory may put a
    /// right-to-left mark in a display name. Claims that identify, `sub`, `client_id` and `azp`, refuse the token.)
    public func displayString(_ name: String) -> String? {
        guard let value = string(name), ClaimText.isSafe(value) else { return nil }
        return value
    }
}
