import Foundation
import Hummingbird

/// The gateway's request context: Hummingbird's core storage plus, on `/mcp`, who the caller is.
struct GatewayRequestContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    /// Set by ``MCPAuthenticationMiddleware`` on `/mcp`.
    var caller: MCPCaller?

    init(source: Source) {
        self.coreContext = .init(source: source)
    }

    /// JSON-RPC bodies can be large-ish (tool arguments); 1 MiB is plenty.
    var maxUploadSize: Int { 1024 * 1024 }
}
