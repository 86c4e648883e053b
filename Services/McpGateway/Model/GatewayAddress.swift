import Foundation
import ServiceSupport

/// Where clients find the gateway: every URL it is known by, derived from `PUBLIC_URL`. In `AUTH_MODE=gateway` the
/// public URL is also the issuer of its authorization server; the MCP resource is `<publicURL>/mcp` in every mode.
struct GatewayAddress: Sendable, Equatable {
    /// The public base URL without a trailing slash, e.g. `https://mcp.example.com`, or `https://example.com/gateway`.
    let publicURL: String

    var issuer: String { publicURL }
    var resource: String { publicURL + "/mcp" }
    /// The URLs MCP clients connect to, each a name of the one protected resource: `/mcp` (Streamable HTTP) and `/sse`
    /// (the legacy HTTP+SSE transport). Clients check that the resource metadata names the URL they connected to,
    /// so each has its own metadata document; tokens for either name work on both.
    var resourceNames: [String] { [publicURL + "/mcp", publicURL + "/sse"] }
    var resourceMetadataURL: String { resourceMetadataURL(for: "mcp") }
    func resourceMetadataURL(for endpoint: String) -> String {
        publicURL + "/.well-known/oauth-protected-resource/" + endpoint
    }
    var callbackURL: String { publicURL + "/callback" }
    /// Whether the gateway is served over https; cookies are then `__Host-` prefixed and `Secure`.
    var isHTTPS: Bool { publicURL.hasPrefix("https://") }

    /// Whether an RFC 8707 `resource` names this gateway.
    func isOwnResource(_ resource: String) -> Bool {
        resourceNames.contains { Self.sameResource($0, resource) }
    }

    /// Resource indicators compare as URLs: a trailing slash does not make another resource.
    static func sameResource(_ lhs: String, _ rhs: String) -> Bool {
        func trimmed(_ text: String) -> String { text.hasSuffix("/") ? String(text.dropLast()) : text }
        return trimmed(lhs) == trimmed(rhs)
    }

    /// Whether the gateway runs on a loopback address (development): then browser origins on localhost are allowed.
    var isLocalDevelopment: Bool {
        guard let host = URLComponents(string: publicURL)?.host else { return false }
        return RedirectURI.isLoopback(host: host)
    }
}
