import Foundation
import JWTAuth
import ServiceSupport

/// Everything McpGateway reads from its environment (or `.dev.vars`). See docs/configuration.md.
struct GatewayConfiguration: Sendable {
    /// The gateway's public base URL without a trailing slash, e.g. `https://mcp.example.com`. It is the issuer of
    /// the gateway's authorization server; the MCP resource is `<publicURL>/mcp`.
    var publicURL: String
    var host: String
    var port: Int
    var upstream: UpstreamConfiguration
    /// Base URL of TodosAPI, e.g. `http://localhost:8789`.
    var apiBaseURL: String
    /// Secret for signing cookies (approvals, CSRF): `COOKIE_ENCRYPTION_KEY`, as in the Cloudflare demo.
    var cookieSecret: String
    /// Secret that encrypts upstream tokens at rest; older secrets decrypt only, for rotation.
    var encryptionSecret: String
    var previousEncryptionSecrets: [String]
    var databasePath: String
    var accessTokenLifetime: TimeInterval
    var grantLifetime: TimeInterval
    /// Origins allowed to call `/mcp` from a browser (DNS rebinding protection).
    var allowedOrigins: Set<String>
    var sessions: SessionLimits

    static let authorizationCodeLifetime: TimeInterval = 60
    static let pendingAuthorizationLifetime: TimeInterval = 600

    var issuer: String { publicURL }
    var resource: String { publicURL + "/mcp" }
    var resourceMetadataURL: String { publicURL + "/.well-known/oauth-protected-resource/mcp" }
    var callbackURL: String { publicURL + "/callback" }
    /// Whether the gateway is served over https; cookies are then `__Host-` prefixed and `Secure`.
    var isHTTPS: Bool { publicURL.hasPrefix("https://") }

    static func load(from settings: Settings) throws(ConfigurationError) -> GatewayConfiguration {
        let publicURL = try normalizedPublicURL(
            settings.url(
                "PUBLIC_URL", default: "http://localhost:8788",
                example: "https://mcp.example.com"))
        let cookieSecret = try secret(settings, "COOKIE_ENCRYPTION_KEY")
        let encryptionSecret = try secret(settings, "GATEWAY_ENCRYPTION_KEY")
        return GatewayConfiguration(
            publicURL: publicURL,
            host: settings.string("HOST", default: "127.0.0.1"),
            port: try settings.integer("PORT", default: 8788, in: 1...65535),
            upstream: try UpstreamConfiguration.load(from: settings),
            apiBaseURL: try settings.url(
                "API_BASE_URL", default: "http://localhost:8789", example: "http://localhost:8789"),
            cookieSecret: cookieSecret,
            encryptionSecret: encryptionSecret,
            previousEncryptionSecrets: settings.list("GATEWAY_ENCRYPTION_KEYS_OLD", default: []),
            databasePath: settings.string("GATEWAY_DATABASE", default: ".data/gateway.sqlite"),
            accessTokenLifetime: try settings.duration("ACCESS_TOKEN_TTL", default: 3600, in: 1...86_400),
            grantLifetime: try settings.duration("GRANT_TTL", default: 30 * 86_400, in: 3600...365 * 86_400),
            allowedOrigins: Set(settings.list("ALLOWED_ORIGINS", default: [])).union([origin(of: publicURL)]),
            sessions: SessionLimits(
                idleTimeout: try settings.duration("MCP_SESSION_IDLE_TIMEOUT", default: 1800, in: 60...86_400),
                maximum: try settings.integer("MCP_MAX_SESSIONS", default: 1000, in: 1...100_000),
                maximumPerUser: try settings.integer("MCP_MAX_SESSIONS_PER_USER", default: 16, in: 1...1000)))
    }

    /// `https://mcp.example.com/` → `https://mcp.example.com`; paths are kept (`https://example.com/gateway`).
    static func normalizedPublicURL(_ text: String) throws(ConfigurationError) -> String {
        guard var components = URLComponents(string: text), components.query == nil, components.fragment == nil else {
            throw ConfigurationError(
                variable: "PUBLIC_URL", problem: "must be a URL without query or fragment",
                example: "https://mcp.example.com")
        }
        while components.path.hasSuffix("/") { components.path.removeLast() }
        return components.string ?? text
    }

    /// `scheme://host[:port]` of a URL.
    static func origin(of url: String) -> String {
        guard let components = URLComponents(string: url), let scheme = components.scheme, let host = components.host
        else { return url }
        return components.port.map { "\(scheme)://\(host):\($0)" } ?? "\(scheme)://\(host)"
    }

    /// Whether the gateway runs on a loopback address (development): then browser origins on localhost are allowed.
    var isLocalDevelopment: Bool {
        guard let host = URLComponents(string: publicURL)?.host else { return false }
        return RedirectURI.isLoopback(host: host)
    }

    private static func secret(_ settings: Settings, _ name: String) throws(ConfigurationError) -> String {
        let value = try settings.required(name, example: "$(openssl rand -base64 32)")
        guard value.utf8.count >= 32 else {
            throw ConfigurationError(
                variable: name, problem: "must be at least 32 characters of random data",
                example: "$(openssl rand -base64 32)")
        }
        return value
    }
}

/// Limits on MCP sessions.
struct SessionLimits: Sendable {
    var idleTimeout: TimeInterval
    var maximum: Int
    var maximumPerUser: Int
}
