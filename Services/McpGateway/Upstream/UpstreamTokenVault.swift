import Foundation
import JWTAuth

/// Seals and opens a grant's upstream tokens. The grant id is the authenticated context, so a ciphertext copied to
/// another grant's row does not open.
struct UpstreamTokenVault {
    let cipher: TokenCipher

    /// Seals a token response under the current key. Without a new refresh token (providers that do not rotate), the
    /// previous one is kept, sealed again under the current key: every update leaves nothing under an old key, so old
    /// keys can be retired.
    func seal(_ tokens: UpstreamTokenResponse, grantID: String, now: Date, previous: UpstreamTokens?) throws
        -> UpstreamTokens
    {
        var refreshToken = try tokens.refreshToken.map { try cipher.seal($0, context: "refresh:" + grantID) }
        if refreshToken == nil, let kept = previous?.refreshToken {
            refreshToken =
                kept.keyID == cipher.current.id
                ? kept
                : try cipher.seal(cipher.open(kept, context: "refresh:" + grantID), context: "refresh:" + grantID)
        }
        return UpstreamTokens(
            accessToken: try cipher.seal(tokens.accessToken, context: "access:" + grantID),
            refreshToken: refreshToken,
            expiresAt: now.addingTimeInterval(tokens.expiresIn ?? 3600),
            scope: tokens.scope ?? previous?.scope ?? [])
    }

    /// The grant's upstream access token; a grant without provider tokens has none.
    func accessToken(of grant: Grant) throws -> String {
        guard let upstream = grant.upstream else { throw TokenCipher.Failure.tampered }
        return try cipher.open(upstream.accessToken, context: "access:" + grant.id)
    }

    func refreshToken(of grant: Grant) throws -> String? {
        try grant.upstream?.refreshToken.map { try cipher.open($0, context: "refresh:" + grant.id) }
    }

    /// The grant's tokens sealed again under the current key; `nil` when they already are, or when the grant has none.
    func resealed(_ grant: Grant) throws -> UpstreamTokens? {
        guard let upstream = grant.upstream,
            upstream.accessToken.keyID != cipher.current.id
                || (upstream.refreshToken.map { $0.keyID != cipher.current.id } ?? false)
        else { return nil }
        var resealed = upstream
        resealed.accessToken = try cipher.seal(accessToken(of: grant), context: "access:" + grant.id)
        resealed.refreshToken = try refreshToken(of: grant).map { try cipher.seal($0, context: "refresh:" + grant.id) }
        return resealed
    }

    /// The ids of the keys `upstream` is sealed under.
    static func keyIDs(of upstream: UpstreamTokens) -> Set<String> {
        Set([upstream.accessToken.keyID] + (upstream.refreshToken.map { [$0.keyID] } ?? []))
    }
}
