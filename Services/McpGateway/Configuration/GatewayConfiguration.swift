import Foundation
import JWTAuth
import ServiceSupport

/// Everything McpGateway reads from its environment (or `.dev.vars`). See docs/configuration.md.
struct GatewayConfiguration: Sendable {
    /// The gateway's public base URL without a trailing slash, e.g. `https://mcp.example.com`. In the default mode it
    /// is the issuer of the gateway's authorization server; the MCP resource is `<publicURL>/mcp` in every mode.
    var publicURL: String
    var host: String
    var port: Int
    /// Base URL of TodosAPI, e.g. `http://localhost:8789`.
    var apiBaseURL: String
    /// `API_OPENAPI`: the OpenAPI document of the API (or an APIs file of several) the tools are made from; `nil`:
    /// TodosAPI's own (``APICatalog``).
    var apiOpenAPI: String? = nil
    /// `API_OPENAPI_WATCH`: how often the files `API_OPENAPI` names are checked for changes (0: only on SIGHUP).
    var apiOpenAPIWatch: TimeInterval = 5
    /// Browser origins allowed to call the gateway (CORS, and DNS rebinding protection on the MCP endpoints).
    var allowedOrigins: Set<String>
    /// Bounds on what MCP clients can make the gateway hold or do at once.
    var mcp: MCPLimits
    /// `HTTP_IDLE_TIMEOUT`: a connection that sends nothing for this long while a request is expected or being read
    /// (unfinished headers or body, an idle keep-alive connection) is closed. Streams being answered are not affected.
    var idleTimeout: TimeInterval
    /// How `/mcp` authenticates its callers (`AUTH_MODE`).
    var mode: AuthMode
    /// How tool calls authenticate to TodosAPI (`DOWNSTREAM_TOKENS`, …).
    var downstream: DownstreamTokenSettings
    /// `GATEWAY_DATABASE_URL` (PostgreSQL) or `GATEWAY_DATABASE` (SQLite): the grants of `AUTH_MODE=gateway`, and in
    /// every mode the keys downstream tokens are signed with.
    var database: DatabaseLocation
    /// `GATEWAY_ENCRYPTION_KEY`: seals upstream tokens and signing keys at rest; `GATEWAY_ENCRYPTION_KEYS_OLD`, older
    /// secrets that still open what they sealed, for rotation.
    var encryptionSecret: String
    var previousEncryptionSecrets: [String] = []
    /// Per-address limits on the anonymous OAuth endpoints (`RATE_LIMIT_*`, `TRUSTED_PROXIES`).
    var rateLimits: GatewayRateLimits
    /// `MCP_SESSION_KEY`: the secret that seals session ids, shared by every instance (see ``SessionIDs``); by
    /// default derived from `GATEWAY_ENCRYPTION_KEY`.
    var sessionKey: String?
    /// `TOOL_POLICY_FILE`: who may call which tool beyond scopes; `nil` without one.
    var toolPolicy: ToolPolicy? = nil
    /// The claims that carry groups and roles (named by the policy file).
    var identityClaims: IdentityClaimNames { toolPolicy?.claims ?? IdentityClaimNames() }
    /// `METRICS_TOKEN`, required by `/metrics` when set.
    var metricsToken: String? = nil
    /// `METRICS_ENABLED`.
    var metricsEnabled = true
    /// The deadlines on everything outside the process (`GATEWAY_DATABASE_TIMEOUT`, `API_TIMEOUT`, `UPSTREAM_TIMEOUT`,
    /// …), docs/operations.md.
    var timeouts = DependencyTimeouts()

    /// The secret session ids are sealed with: `MCP_SESSION_KEY`, else `GATEWAY_ENCRYPTION_KEY`.
    var sessionSecret: String { sessionKey ?? encryptionSecret }

    /// Every URL the gateway is known by, derived from `publicURL`.
    var address: GatewayAddress { GatewayAddress(publicURL: publicURL) }

    static func load(from settings: Settings) throws(ConfigurationError) -> GatewayConfiguration {
        let publicURL = try normalizedPublicURL(
            settings.url("PUBLIC_URL", default: "http://localhost:8788", example: "https://mcp.example.com"))
        // OAuth over plain http would expose codes and tokens, and cookies could not be Secure. Behind a proxy that
        // terminates TLS, PUBLIC_URL is the https URL clients use.
        try PlainHTTPRule.check(publicURL, variable: "PUBLIC_URL", example: "https://mcp.example.com")
        let origins = try allowedOrigins(from: settings)
        let mode = try AuthMode.load(from: settings, resources: [publicURL + "/mcp", publicURL + "/sse"])
        return GatewayConfiguration(
            publicURL: publicURL,
            host: settings.string("HOST", default: "127.0.0.1"),
            port: try settings.integer("PORT", default: 8788, in: 1...65535),
            apiBaseURL: try settings.url(
                "API_BASE_URL", default: "http://localhost:8789", example: "http://localhost:8789"),
            apiOpenAPI: settings.string("API_OPENAPI").flatMap { $0.isEmpty ? nil : $0 },
            apiOpenAPIWatch: try settings.duration("API_OPENAPI_WATCH", default: 5, in: 0...3600),
            allowedOrigins: Set(origins).union([origin(of: publicURL)]),
            mcp: try MCPLimits.load(from: settings),
            idleTimeout: try settings.duration("HTTP_IDLE_TIMEOUT", default: 30, in: 1...3600),
            mode: mode,
            downstream: try DownstreamTokenSettings.load(
                from: settings, mode: mode.name, upstreamCanServeAPI: mode.upstreamCanServeAPI),
            database: try DatabaseLocation.load(from: settings),
            encryptionSecret: try settings.requiredSecret("GATEWAY_ENCRYPTION_KEY"),
            previousEncryptionSecrets: settings.list("GATEWAY_ENCRYPTION_KEYS_OLD", default: []),
            rateLimits: try GatewayRateLimits.load(from: settings),
            sessionKey: try settings.secret("MCP_SESSION_KEY"),
            toolPolicy: try ToolPolicy.load(from: settings),
            metricsToken: try settings.metricsToken(),
            metricsEnabled: try settings.metricsEnabled(),
            timeouts: try DependencyTimeouts.load(from: settings))
    }

    /// `CORS_ALLOWED_ORIGINS` (or its older name `ALLOWED_ORIGINS`): browser origins, each `scheme://host[:port]`.
    /// No wildcard: behind Cloudflare Access the browser's Access cookie would ride along with any site's requests.
    static func allowedOrigins(from settings: Settings) throws(ConfigurationError) -> [String] {
        guard let found = try settings.oneOf(["CORS_ALLOWED_ORIGINS", "ALLOWED_ORIGINS"]) else { return [] }
        let origins = settings.list(found.name, default: [])
        for origin in origins {
            guard let components = URLComponents(string: origin),
                components.scheme == "http" || components.scheme == "https",
                components.host?.isEmpty == false, components.path.isEmpty, components.query == nil,
                components.fragment == nil, components.user == nil, self.origin(of: origin) == origin.lowercased()
            else {
                throw ConfigurationError(
                    variable: found.name,
                    problem:
                        "must list origins as scheme://host[:port], comma-separated, without paths or '*' ('\(origin)' is not one)",
                    example: "http://localhost:6274,https://app.example.com")
            }
        }
        return origins.map { $0.lowercased() }
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

    /// `scheme://host[:port]` of a URL, lowercased, as browsers send it in `Origin`.
    static func origin(of url: String) -> String {
        guard let components = URLComponents(string: url), let scheme = components.scheme?.lowercased(),
            let host = components.host?.lowercased()
        else { return url.lowercased() }
        return components.port.map { "\(scheme)://\(host):\($0)" } ?? "\(scheme)://\(host)"
    }
}
