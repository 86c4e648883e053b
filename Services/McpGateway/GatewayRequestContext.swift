import Foundation
import Hummingbird
import NIOCore

/// The gateway's request context: Hummingbird's core storage plus, on `/mcp`, who the caller is.
struct GatewayRequestContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    /// Set by ``MCPAuthenticationMiddleware`` on `/mcp`.
    var caller: MCPCaller?
    /// The connection the request came on; event streams watch it for the client's departure.
    let channel: any Channel

    init(source: Source) {
        self.coreContext = .init(source: source)
        self.channel = source.channel
    }

    /// JSON-RPC bodies can be large-ish (tool arguments); 1 MiB is plenty.
    var maxUploadSize: Int { 1024 * 1024 }
}
