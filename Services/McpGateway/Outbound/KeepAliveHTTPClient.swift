import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import ServiceLifecycle
import Synchronization

/// A small HTTP/1.1 client for one service the gateway calls on every tool call (TodosAPI): connections kept alive and
/// reused, at most ``Configuration/maximumConnections`` of them, one request at a time on each.
///
/// Why not AsyncHTTPClient, which the gateway uses for everything else: a tool call's round trip to TodosAPI is the
/// gateway's hottest path, and AsyncHTTPClient's generality (redirects, tracing spans, HTTP/2, per-request
/// validation and state machines) was a quarter of the gateway's CPU per call. This client does one thing: send a
/// request to a fixed origin, read a bounded response, keep the connection if the server does.
///
/// A request that finds its reused connection closed by the server before any byte of the answer arrived is sent
/// again once, on a new connection (the server never saw it: an idle connection it closed); so is an idempotent
/// request whose new connection was closed that way.
final class KeepAliveHTTPClient: Sendable {
    struct Configuration: Sendable {
        var connectTimeout: TimeAmount = .seconds(3)
        var maximumConnections = 64
        var maximumResponseBytes = 1024 * 1024
    }

    /// A request to the origin: method, path (with query), headers and body.
    struct Request: Sendable {
        var method: HTTPMethod
        var path: String
        var headers: HTTPHeaders = [:]
        var body: ByteBuffer?
    }

    struct Response: Sendable {
        let status: HTTPResponseStatus
        let headers: HTTPHeaders
        let body: ByteBuffer
    }

    /// Why a request got no response.
    enum Failure: Error, CustomStringConvertible {
        case connect(String)
        case closedBeforeResponse(receivedAnything: Bool)
        case timedOut
        case responseTooLarge(Int)
        case io(String)
        case shutDown

        var description: String {
            switch self {
            case .connect(let reason): "could not connect: \(reason)"
            case .closedBeforeResponse: "the connection closed before the response was complete"
            case .timedOut: "no response in time"
            case .responseTooLarge(let limit): "the response is larger than \(limit) bytes"
            case .io(let reason): reason
            case .shutDown: "the client was shut down"
            }
        }
    }

    let origin: Origin
    private let configuration: Configuration
    private let group: any EventLoopGroup
    private let tls: NIOSSLContext?
    private let pool = Mutex(PoolState())

    /// `scheme://host[:port][/base path]` of a service; requests' paths are appended to the base path.
    struct Origin: Sendable, Equatable {
        let secure: Bool
        let host: String
        let port: Int
        let basePath: String

        /// The `Host` header: the port only when it is not the scheme's default.
        let hostHeader: String

        init?(_ url: String) {
            guard let components = URLComponents(string: url), let scheme = components.scheme?.lowercased(),
                scheme == "http" || scheme == "https", let host = components.host, !host.isEmpty,
                components.query == nil, components.fragment == nil
            else { return nil }
            self.secure = scheme == "https"
            self.host = host
            self.port = components.port ?? (secure ? 443 : 80)
            var path = components.percentEncodedPath
            while path.hasSuffix("/") { path.removeLast() }
            self.basePath = path
            let name = host.contains(":") ? "[\(host)]" : host
            self.hostHeader = port == (secure ? 443 : 80) ? name : "\(name):\(port)"
        }
    }

    private struct PoolState {
        var idle: [any Channel] = []
        var open = 0
        var waiters: [CheckedContinuation<Lease, any Error>] = []
        var shutDown = false
    }

    /// What a caller of ``lease()`` gets: a connection to reuse, or the right to open one.
    private enum Lease {
        case reuse(any Channel)
        case connect
    }

    init(
        origin: Origin, configuration: Configuration = .init(),
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    )
        throws
    {
        self.origin = origin
        self.configuration = configuration
        self.group = group
        self.tls = origin.secure ? try NIOSSLContext(configuration: .makeClientConfiguration()) : nil
    }

    /// Sends `request` and reads its response, within `timeout` once a connection is had.
    func execute(_ request: Request, timeout: TimeAmount) async throws(Failure) -> Response {
        var request = request
        request.headers.replaceOrAdd(name: "Host", value: origin.hostHeader)
        if let body = request.body {
            request.headers.replaceOrAdd(name: "Content-Length", value: "\(body.readableBytes)")
        }
        let head = HTTPRequestHead(
            version: .http1_1, method: request.method, uri: origin.basePath + request.path, headers: request.headers)
        for attempt in 0..<2 {
            let (channel, reused) = try await connection()
            let exchange = Exchange(
                head: head, body: request.body, timeout: timeout, limit: configuration.maximumResponseBytes,
                promise: channel.eventLoop.makePromise(of: ExchangeResult.self))
            // A connection closed meanwhile has no handler left to answer: its failed write answers instead.
            channel.writeAndFlush(exchange).whenFailure { _ in
                exchange.promise.fail(Failure.closedBeforeResponse(receivedAnything: false))
            }
            let result: ExchangeResult
            do { result = try await exchange.promise.futureResult.get() } catch {
                release(channel, reusable: false)
                // Sent again once when the server cannot have answered it: a reused connection it had closed, or (a
                // server too loaded to read it before its idle timeout) any connection, for an idempotent method
                // (RFC 9110 §9.2.2).
                if attempt == 0, reused || Self.isIdempotent(request.method),
                    case Failure.closedBeforeResponse(receivedAnything: false)? = error as? Failure
                {
                    continue
                }
                throw (error as? Failure) ?? .io("\(error)")
            }
            release(channel, reusable: result.keepAlive)
            return result.response
        }
        throw .closedBeforeResponse(receivedAnything: false)
    }

    /// Closes the idle connections and refuses new requests.
    func shutdown() {
        let (idle, waiters) = pool.withLock { pool in
            pool.shutDown = true
            defer {
                pool.idle = []
                pool.waiters = []
            }
            return (pool.idle, pool.waiters)
        }
        for channel in idle { channel.close(promise: nil) }
        for waiter in waiters { waiter.resume(throwing: Failure.shutDown) }
    }

    // MARK: The pool

    /// GET, HEAD, PUT, DELETE, OPTIONS and TRACE: sending one twice has the effect of sending it once.
    static func isIdempotent(_ method: HTTPMethod) -> Bool {
        switch method {
        case .GET, .HEAD, .PUT, .DELETE, .OPTIONS, .TRACE: true
        default: false
        }
    }

    private func connection() async throws(Failure) -> (any Channel, reused: Bool) {
        let lease: Lease
        do {
            lease = try await withCheckedThrowingContinuation { continuation in
                enum Decision {
                    case now(Lease)
                    case wait
                    case fail
                }
                let decision: Decision = pool.withLock { pool in
                    if pool.shutDown { return .fail }
                    while let channel = pool.idle.popLast() {
                        if channel.isActive { return .now(.reuse(channel)) }
                        pool.open -= 1
                    }
                    if pool.open < configuration.maximumConnections {
                        pool.open += 1
                        return .now(.connect)
                    }
                    pool.waiters.append(continuation)
                    return .wait
                }
                switch decision {
                case .now(let lease): continuation.resume(returning: lease)
                case .fail: continuation.resume(throwing: Failure.shutDown)
                case .wait: break
                }
            }
        } catch {
            throw (error as? Failure) ?? .shutDown
        }
        switch lease {
        case .reuse(let channel): return (channel, true)
        case .connect:
            do { return (try await connect(), false) } catch {
                // The place this connection would have taken goes to a waiter, or back to the pool.
                handOn()
                throw error
            }
        }
    }

    private func release(_ channel: any Channel, reusable: Bool) {
        enum Next {
            case handed(CheckedContinuation<Lease, any Error>)
            case kept
            case closed(CheckedContinuation<Lease, any Error>?)
        }
        let next: Next = pool.withLock { pool in
            if reusable, channel.isActive, !pool.shutDown {
                if !pool.waiters.isEmpty { return .handed(pool.waiters.removeFirst()) }
                pool.idle.append(channel)
                return .kept
            }
            if !pool.waiters.isEmpty { return .closed(pool.waiters.removeFirst()) }
            pool.open -= 1
            return .closed(nil)
        }
        switch next {
        case .handed(let waiter): waiter.resume(returning: .reuse(channel))
        case .kept: break
        case .closed(let waiter):
            channel.close(promise: nil)
            waiter?.resume(returning: .connect)
        }
    }

    /// A connection attempt failed: its place goes to the next waiter (who tries in turn), or is freed.
    private func handOn() {
        let waiter: CheckedContinuation<Lease, any Error>? = pool.withLock { pool in
            if !pool.waiters.isEmpty { return pool.waiters.removeFirst() }
            pool.open -= 1
            return nil
        }
        waiter?.resume(returning: .connect)
    }

    private func connect() async throws(Failure) -> any Channel {
        let tls = self.tls
        let serverName = origin.host.first?.isNumber == true || origin.host.contains(":") ? nil : origin.host
        do {
            return try await ClientBootstrap(group: group)
                .connectTimeout(configuration.connectTimeout)
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        if let tls {
                            try channel.pipeline.syncOperations.addHandler(
                                try NIOSSLClientHandler(context: tls, serverHostname: serverName))
                        }
                        try channel.pipeline.syncOperations.addHTTPClientHandlers()
                        try channel.pipeline.syncOperations.addHandler(ExchangeHandler())
                    }
                }
                .connect(host: origin.host, port: origin.port).get()
        } catch {
            throw .connect("\(error)")
        }
    }
}

/// One request on a connection and the promise of its response.
private struct Exchange: Sendable {
    let head: HTTPRequestHead
    let body: ByteBuffer?
    let timeout: TimeAmount
    let limit: Int
    let promise: EventLoopPromise<ExchangeResult>
}

private struct ExchangeResult: Sendable {
    let response: KeepAliveHTTPClient.Response
    let keepAlive: Bool
}

/// Writes an ``Exchange``'s request and completes its promise with the response, a timeout or the connection's end.
/// All on the connection's event loop, so the promise is completed exactly once.
private final class ExchangeHandler: ChannelDuplexHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundIn = Exchange
    typealias OutboundOut = HTTPClientRequestPart

    private var exchange: Exchange?
    private var head: HTTPResponseHead?
    private var body: ByteBuffer?
    private var receivedAnything = false
    private var timer: Scheduled<Void>?

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let exchange = unwrapOutboundIn(data)
        guard self.exchange == nil else {
            exchange.promise.fail(KeepAliveHTTPClient.Failure.io("the connection is busy"))
            return
        }
        self.exchange = exchange
        (head, body, receivedAnything) = (nil, nil, false)
        let loop = context.eventLoop
        let bound = NIOLoopBound((handler: self, context: context), eventLoop: loop)
        timer = loop.scheduleTask(in: exchange.timeout) {
            bound.value.handler.finish(.failure(KeepAliveHTTPClient.Failure.timedOut))
            bound.value.context.close(promise: nil)
        }
        context.write(wrapOutboundOut(.head(exchange.head)), promise: nil)
        if let body = exchange.body { context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil) }
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: promise)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let exchange else { return }
        receivedAnything = true
        switch unwrapInboundIn(data) {
        case .head(let responseHead):
            head = responseHead
        case .body(var part):
            if (body?.readableBytes ?? 0) + part.readableBytes > exchange.limit {
                finish(.failure(KeepAliveHTTPClient.Failure.responseTooLarge(exchange.limit)))
                context.close(promise: nil)
                return
            }
            if body == nil { body = part } else { body?.writeBuffer(&part) }
        case .end:
            guard let head else { return }
            let response = KeepAliveHTTPClient.Response(
                status: head.status, headers: head.headers, body: body ?? ByteBuffer())
            finish(.success(ExchangeResult(response: response, keepAlive: head.isKeepAlive)))
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        finish(.failure(KeepAliveHTTPClient.Failure.closedBeforeResponse(receivedAnything: receivedAnything)))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        finish(.failure(KeepAliveHTTPClient.Failure.io("\(error)")))
        context.close(promise: nil)
    }

    private func finish(_ result: Result<ExchangeResult, any Error>) {
        guard let exchange else { return }
        self.exchange = nil
        timer?.cancel()
        timer = nil
        exchange.promise.completeWith(result)
    }
}

/// Closes the kept-alive connections when the gateway shuts down.
struct OutboundConnections: Service {
    let client: KeepAliveHTTPClient

    func run() async throws {
        try? await gracefulShutdown()
        client.shutdown()
    }
}
