import ServiceSupport

/// The gateway's opaque credentials: 256 random bits, base64url, with a prefix that secret scanners can match. They
/// carry no user data; only their SHA-256 digests are stored.
enum GatewayTokenFormat {
    static let accessTokenPrefix = "mcpgw_at_"
    static let refreshTokenPrefix = "mcpgw_rt_"
    static let authorizationCodePrefix = "mcpgw_ac_"
    static let clientSecretPrefix = "mcpgw_cs_"

    static func newAccessToken(from random: any RandomSource) -> String {
        random.token(prefix: accessTokenPrefix)
    }
    static func newRefreshToken(from random: any RandomSource) -> String {
        random.token(prefix: refreshTokenPrefix)
    }
    static func newAuthorizationCode(from random: any RandomSource) -> String {
        random.token(prefix: authorizationCodePrefix)
    }
    static func newClientSecret(from random: any RandomSource) -> String {
        random.token(prefix: clientSecretPrefix)
    }
    /// Client ids are public: 128 bits are enough to make them unguessable.
    static func newClientID(from random: any RandomSource) -> String { newIdentifier(from: random) }
    static func newGrantID(from random: any RandomSource) -> String { newIdentifier(from: random) }

    /// 128 random bits in base64url, never beginning with `-`: an operator passes these ids to `McpGateway admin`, whose
    /// command line would take `-abc…` for an option.
    private static func newIdentifier(from random: any RandomSource) -> String {
        while true {
            let id = random.token(byteCount: 16)
            if !id.hasPrefix("-") { return id }
        }
    }
}
