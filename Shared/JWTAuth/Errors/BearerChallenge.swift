extension BearerAuthError {
    /// The value of the `WWW-Authenticate` header for this error (RFC 6750 §3, RFC 9728 §5.1).
    ///
    /// - Parameters:
    ///   - realm: The protection space, e.g. `todos-api`; omitted when `nil`.
    ///   - scope: The scope to advertise; defaults to `requiredScope` for `insufficientScope`.
    ///   - resourceMetadata: The URL of the protected resource metadata (RFC 9728), which MCP clients follow.
    /// - Returns: For example `Bearer realm="todos-api", error="invalid_token", error_description="The access token
    ///   expired"`. The error attributes are left out when the request carried no credentials.
    public func challenge(realm: String? = nil, scope: ScopeSet? = nil, resourceMetadata: String? = nil) -> String {
        var parameters: [(String, String)] = []
        if let realm { parameters.append(("realm", realm)) }
        if let code {
            parameters.append(("error", code.rawValue))
            parameters.append(("error_description", message))
        }
        if let scope = scope ?? requiredScope, !scope.isEmpty {
            parameters.append(("scope", scope.description))
        }
        if let resourceMetadata { parameters.append(("resource_metadata", resourceMetadata)) }
        return BearerChallenge.render(parameters)
    }
}

/// Renders `WWW-Authenticate: Bearer …` challenges.
enum BearerChallenge {
    static func render(_ parameters: [(String, String)]) -> String {
        guard !parameters.isEmpty else { return "Bearer" }
        return "Bearer " + parameters.map { "\($0.0)=\"\(quotedStringSafe($0.1))\"" }.joined(separator: ", ")
    }

    static func quotedStringSafe(_ value: String) -> String { OAuthErrorText.safe(value) }
}

/// The text of OAuth error responses.
public enum OAuthErrorText {
    /// The longest `error_description` sent: enough for a sentence, not for an echo of a whole hostile input.
    public static let maximumLength = 400

    /// `value` reduced to the characters RFC 6749 §5.2 and RFC 6750 §3 allow in `error_description`
    /// (%x20-21 / %x23-5B / %x5D-7E): double quotes and backslashes become apostrophes, other characters outside
    /// printable ASCII become `?`, and the text is cut at ``maximumLength``. Every error description goes through it,
    /// because many of them quote what the client sent.
    public static func safe(_ value: String) -> String {
        var result = ""
        result.unicodeScalars.reserveCapacity(min(value.unicodeScalars.count, maximumLength))
        for scalar in value.unicodeScalars {
            guard result.unicodeScalars.count < maximumLength else { break }
            switch scalar.value {
            case 0x22, 0x5C: result.unicodeScalars.append("'")
            case 0x20...0x7E: result.unicodeScalars.append(scalar)
            default: result.unicodeScalars.append("?")
            }
        }
        return result
    }
}
