import AsyncHTTPClient
import NIOCore

/// The one HTTP client the gateway uses for the provider and TodosAPI: connections pooled (up to 64 per host, so that
/// many concurrent tool calls do not queue), a 3-second connect timeout so that an unreachable service fails fast,
/// redirects not followed (a token endpoint or API that redirects is misconfigured, and a redirect could carry the
/// request's credentials elsewhere).
enum OutboundHTTPClient {
    static func make(connectTimeout: TimeAmount = .seconds(3)) -> HTTPClient {
        var configuration = HTTPClient.Configuration(
            timeout: .init(connect: connectTimeout, read: .seconds(15)),
            connectionPool: .init(idleTimeout: .seconds(60)))
        configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = 64
        configuration.redirectConfiguration = .disallow
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }
}
