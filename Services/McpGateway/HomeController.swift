import Hummingbird
import Mustache
import ServiceSupport

/// `GET /`: a page for people who open the gateway's URL in a browser, saying what it is and how to connect.
struct HomeController {
    let configuration: GatewayConfiguration
    let pages: PageRenderer

    func addRoutes(to router: Router<GatewayRequestContext>) {
        var values: [String: Any] = [
            "mcpURL": configuration.address.resource, "legacySSEURL": configuration.publicURL + "/sse",
        ]
        switch configuration.mode {
        case .authorizationServer(let settings):
            values["signIn"] =
                "The client registers itself, you sign in with \(settings.upstream.displayName) and approve it, "
                + "and it can then use the Todos tools on your behalf."
            values["metadataURL"] = configuration.address.resourceMetadataURL
        case .externalAuthorizationServer(let settings):
            values["signIn"] =
                "Clients sign in with the authorization server \(settings.issuer) and present its access tokens here."
            values["metadataURL"] = configuration.address.resourceMetadataURL
        case .cloudflareAccess:
            values["signIn"] = "Cloudflare Access signs you in before your requests reach this server."
        }
        let html = pages.library.render(values, withTemplate: "home") ?? ""
        router.get("/") { _, _ in HTMLPage.response(html) }
    }
}
