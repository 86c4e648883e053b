import AsyncHTTPClient
import NIOCore

/// The HTTP client the gateway uses for the provider (TodosAPI has ``KeepAliveHTTPClient``): connections pooled (up to
/// 64 per host), a 3-second connect timeout, redirects not followed (a token endpoint that redirects is
/// misconfigured, and a redirect could carry the request's credentials elsewhere).
///
/// A refused connection fails the request at once: by default async-http-client retries it, with a back-off that grows
/// to a minute and is reset only by a connection that succeeds, so a request would wait out its whole deadline while
/// the provider is down, and the first requests after it is back would still be waiting out the back-off.
enum OutboundHTTPClient {
    static func make(connectTimeout: TimeAmount = .seconds(3)) -> HTTPClient {
        var configuration = HTTPClient.Configuration(
            timeout: .init(connect: connectTimeout, read: .seconds(15)),
            connectionPool: .init(idleTimeout: .seconds(60)))
        configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = 64
        configuration.connectionPool.retryConnectionEstablishment = false
        configuration.redirectConfiguration = .disallow
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }
}
