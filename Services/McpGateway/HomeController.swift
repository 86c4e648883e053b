import Hummingbird

/// `GET /`: a page for people who open the gateway's URL in a browser, saying what it is and how to connect.
struct HomeController {
    let configuration: GatewayConfiguration
    let pages: PageRenderer

    func addRoutes(to router: Router<GatewayRequestContext>) {
        router.get("/") { _, _ in
            pages.page(
                "home",
                [
                    "mcpURL": configuration.resource, "identityProvider": configuration.upstream.displayName,
                    "metadataURL": configuration.publicURL + "/.well-known/oauth-authorization-server",
                ])
        }
    }
}
