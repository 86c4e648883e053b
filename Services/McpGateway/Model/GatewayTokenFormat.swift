import ServiceSupport

/// The gateway's opaque credentials: 256 random bits, base64url, with a prefix that secret scanners can match. They
/// carry no user data; only their SHA-256 digests are stored.
enum GatewayTokenFormat {
    static let accessTokenPrefix = "mcpgw_at_"
    static let refreshTokenPrefix = "mcpgw_rt_"
    static let authorizationCodePrefix = "mcpgw_ac_"
    static let clientSecretPrefix = "mcpgw_cs_"

    static func newAccessToken() -> String { SecureRandom.token(prefix: accessTokenPrefix) }
    static func newRefreshToken() -> String { SecureRandom.token(prefix: refreshTokenPrefix) }
    static func newAuthorizationCode() -> String { SecureRandom.token(prefix: authorizationCodePrefix) }
    static func newClientSecret() -> String { SecureRandom.token(prefix: clientSecretPrefix) }
    /// Client ids are public: 128 bits are enough to make them unguessable.
    static func newClientID() -> String { newIdentifier() }
    static func newGrantID() -> String { newIdentifier() }

    /// 128 random bits in base64url, never beginning with `-`: an operator passes these ids to `McpGateway admin`, whose
    /// command line would take `-abc…` for an option.
    private static func newIdentifier() -> String {
        while true {
            let id = SecureRandom.token(byteCount: 16)
            if !id.hasPrefix("-") { return id }
        }
    }
}
