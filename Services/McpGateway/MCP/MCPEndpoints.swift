import Hummingbird

/// The MCP endpoints: Streamable HTTP at `/mcp`, and the legacy HTTP+SSE transport at `/sse` and `/messages`. All
/// three check the browser's `Origin` and authenticate the caller the same way, in every `AUTH_MODE`; a 401 names
/// the protected resource metadata of the endpoint that was called.
struct MCPEndpoints {
    let server: MCPServer
    let authenticator: any MCPAuthenticator
    let origins: OriginPolicy
    let address: GatewayAddress
    /// What 401 challenges tell clients to ask for.
    let scopes: GatewayScopes

    func addRoutes(to router: Router<GatewayRequestContext>) {
        func authentication(_ endpoint: String) -> MCPAuthenticationMiddleware {
            MCPAuthenticationMiddleware(
                origins: origins, authenticator: authenticator,
                challenge: MCPBearerChallenge(
                    resourceMetadataURL: address.resourceMetadataURL(for: endpoint), scope: scopes.default))
        }
        StreamableHTTPEndpoint(server: server)
            .addRoutes(to: router.group("mcp").add(middleware: authentication("mcp")))
        LegacySSEEndpoint(server: server, publicURL: address.publicURL).addRoutes(
            sse: router.group("sse").add(middleware: authentication("sse")),
            messages: router.group("messages").add(middleware: authentication("sse")))
    }
}
