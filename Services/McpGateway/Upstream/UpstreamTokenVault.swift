import Foundation
import JWTAuth

/// Seals and opens a grant's upstream tokens. The grant id is the authenticated context, so a ciphertext copied to
/// another grant's row does not open.
struct UpstreamTokenVault {
    let cipher: TokenCipher

    /// Seals a token response. Without a new refresh token (providers that do not rotate), the previous one is kept.
    func seal(_ tokens: UpstreamTokenResponse, grantID: String, now: Date, previous: UpstreamTokens?) throws
        -> UpstreamTokens
    {
        UpstreamTokens(
            accessToken: try cipher.seal(tokens.accessToken, context: "access:" + grantID),
            refreshToken: try tokens.refreshToken.map { try cipher.seal($0, context: "refresh:" + grantID) }
                ?? previous?.refreshToken,
            expiresAt: now.addingTimeInterval(tokens.expiresIn ?? 3600),
            scope: tokens.scope ?? previous?.scope ?? [])
    }

    func accessToken(of grant: Grant) throws -> String {
        try cipher.open(grant.upstream.accessToken, context: "access:" + grant.id)
    }

    func refreshToken(of grant: Grant) throws -> String? {
        try grant.upstream.refreshToken.map { try cipher.open($0, context: "refresh:" + grant.id) }
    }
}
