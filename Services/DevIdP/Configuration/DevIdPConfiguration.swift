import Foundation
import ServiceSupport

/// DevIdP's settings, read from the same `.dev.vars` as the other services so that the gateway's client and the API
/// audience match without being written twice.
struct DevIdPConfiguration: Sendable {
    var host: String
    var port: Int
    /// `http://localhost:8790/`: with the trailing slash, as Auth0 issuers have.
    var issuer: String
    /// The API identifiers tokens can be requested for; the first is the default audience.
    var audiences: [String]
    /// Every permission an API defines: the scopes a machine client is granted.
    var apiPermissions: [String]
    var users: UserDirectory
    var clients: [Client]
    var signingKeyPath: String
    var accessTokenLifetime: TimeInterval
    var idTokenLifetime: TimeInterval
    var refreshTokenLifetime: TimeInterval
    /// `DEVIDP_REFRESH_REUSE_INTERVAL`: like Auth0's rotation setting "Reuse Interval", how long after its rotation a
    /// refresh token may be presented again (a client that lost the response retries) before that counts as reuse.
    /// 0, the default as in Auth0, makes every second use a reuse that revokes the family.
    var refreshReuseInterval: TimeInterval = 0
    /// The authorization servers DevIdP issues identity assertions (ID-JAG) for: `DEVIDP_ID_JAG_AUDIENCES`, by default
    /// the gateway's `PUBLIC_URL`.
    var identityAssertionAudiences: [String] = []

    static let oidcScopes = ["openid", "profile", "email", "offline_access"]
    static let authorizationCodeLifetime: TimeInterval = 60
    static let loginTransactionLifetime: TimeInterval = 600

    var userinfoAudience: String { issuer + "userinfo" }

    static func load(from settings: Settings, port overridePort: Int? = nil) throws(ConfigurationError)
        -> DevIdPConfiguration
    {
        var port = try settings.integer("DEVIDP_PORT", default: 8790, in: 1...65535)
        if let overridePort { port = overridePort }
        let issuer = try Auth0Domain.issuer(
            from: settings.string("DEVIDP_ISSUER", default: "http://localhost:\(port)"), variable: "DEVIDP_ISSUER")
        let audiences = settings.list("AUTH0_AUDIENCE", default: ["urn:todos-api"])
        let usersPath = settings.string("DEVIDP_USERS") ?? Bundle.module.path(forResource: "users", ofType: "json")
        guard let usersPath else {
            throw ConfigurationError(variable: "DEVIDP_USERS", problem: "is missing", example: "users.json")
        }
        let users = try UserDirectory.load(path: usersPath)
        let now = Date()

        var clients: [Client] = []
        if let gateway = try clientCredentials(settings, id: "AUTH0_CLIENT_ID", secret: "AUTH0_CLIENT_SECRET") {
            let publicURL = settings.string("PUBLIC_URL", default: "http://localhost:8788")
            let defaultRedirect = publicURL.hasSuffix("/") ? publicURL + "callback" : publicURL + "/callback"
            let redirects = settings.list("DEVIDP_REDIRECT_URIS", default: [defaultRedirect])
            for uri in redirects {
                do { try RedirectURI.validate(uri) } catch {
                    throw ConfigurationError(
                        variable: "DEVIDP_REDIRECT_URIS", problem: "has '\(uri)', which \(error)",
                        example: defaultRedirect)
                }
            }
            clients.append(
                Client(
                    id: gateway.id, kind: .confidential, secretDigest: SecretDigest.hex(gateway.secret),
                    name: "MCP Gateway", redirectURIs: redirects,
                    grantTypes: [
                        "authorization_code", "refresh_token", "password", GrantType.tokenExchange,
                    ], createdAt: now))
        }
        // An AI agent of the enterprise: it signs users in here and exchanges their ID tokens for identity assertions
        // (ID-JAG) to the MCP gateway, which knows it by the same client id (`McpGateway admin add-client --id`).
        if let agent = try clientCredentials(
            settings, id: "DEVIDP_AGENT_CLIENT_ID", secret: "DEVIDP_AGENT_CLIENT_SECRET")
        {
            clients.append(
                Client(
                    id: agent.id, kind: .confidential, secretDigest: SecretDigest.hex(agent.secret),
                    name: "Enterprise agent", redirectURIs: [],
                    grantTypes: ["password", GrantType.tokenExchange], createdAt: now))
        }
        if let machine = try clientCredentials(settings, id: "DEVIDP_M2M_CLIENT_ID", secret: "DEVIDP_M2M_CLIENT_SECRET")
        {
            clients.append(
                Client(
                    id: machine.id, kind: .machine, secretDigest: SecretDigest.hex(machine.secret),
                    name: "Todos API (Test Application)", redirectURIs: [],
                    grantTypes: ["client_credentials", "password"], createdAt: now))
        }

        return DevIdPConfiguration(
            host: settings.string("DEVIDP_HOST", default: "127.0.0.1"),
            port: port,
            issuer: issuer,
            audiences: audiences,
            apiPermissions: ["read:todos", "read:billing", "write:todos"],
            users: users,
            clients: clients,
            signingKeyPath: settings.string("DEVIDP_SIGNING_KEY", default: ".data/devidp/signing-key.pem"),
            accessTokenLifetime: try settings.duration("DEVIDP_ACCESS_TOKEN_TTL", default: 3600, in: 5...86_400 * 30),
            idTokenLifetime: try settings.duration("DEVIDP_ID_TOKEN_TTL", default: 3600, in: 5...86_400 * 30),
            refreshTokenLifetime: try settings.duration(
                "DEVIDP_REFRESH_TOKEN_TTL", default: 30 * 86_400, in: 60...86_400 * 365),
            refreshReuseInterval: try settings.duration("DEVIDP_REFRESH_REUSE_INTERVAL", default: 0, in: 0...86_400),
            identityAssertionAudiences: settings.list(
                "DEVIDP_ID_JAG_AUDIENCES",
                default: [settings.string("PUBLIC_URL", default: "http://localhost:8788")].map {
                    $0.hasSuffix("/") ? String($0.dropLast()) : $0
                }))
    }

    /// Both or neither of a client's id and secret.
    private static func clientCredentials(_ settings: Settings, id: String, secret: String)
        throws(ConfigurationError) -> (id: String, secret: String)?
    {
        switch (settings.string(id), settings.string(secret)) {
        case (nil, nil): return nil
        case (let clientID?, let clientSecret?): return (clientID, clientSecret)
        case (nil, _):
            throw ConfigurationError(
                variable: id, problem: "is missing while \(secret) is set", example: "devidp-client")
        case (_, nil):
            throw ConfigurationError(
                variable: secret, problem: "is missing while \(id) is set", example: "a-long-random-secret")
        }
    }
}
