import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
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
        /// Requests waiting for a connection when all are in use, at most; beyond, a request fails at once
        /// (``Failure/overloaded``) rather than queueing without bound behind a service that stopped answering.
        var maximumWaiters = 1024
        /// A kept connection unused this long is closed: shorter than servers' own idle timeouts (TodosAPI's
        /// `HTTP_IDLE_TIMEOUT` is 30 s), so that a request rarely finds its connection closed under it.
        var idleTimeout: TimeAmount = .seconds(20)
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
        /// The deadline passed: waiting for a connection, connecting, or for the answer.
        case timedOut
        /// Every connection is busy and ``Configuration/maximumWaiters`` requests already wait for one.
        case overloaded
        case responseTooLarge(Int)
        case io(String)
        case shutDown
        case cancelled

        var description: String {
            switch self {
            case .connect(let reason): "could not connect: \(reason)"
            case .closedBeforeResponse: "the connection closed before the response was complete"
            case .timedOut: "no response in time"
            case .overloaded: "too many requests are waiting for a connection"
            case .responseTooLarge(let limit): "the response is larger than \(limit) bytes"
            case .io(let reason): reason
            case .shutDown: "the client was shut down"
            case .cancelled: "the request was cancelled"
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

    private struct IdleConnection {
        let channel: any Channel
        /// Which idling this is: the idle timer closes the connection only if it is still this one.
        let number: UInt64
        /// The idle timer, cancelled when the connection is taken again.
        var timer: Scheduled<Void>?
    }

    private struct Waiter {
        let continuation: CheckedContinuation<Lease, any Error>
        var timer: Scheduled<Void>?
    }

    private struct PoolState {
        var idle: [IdleConnection] = []
        var open = 0
        /// In arrival order (ids only grow).
        var waiters: [UInt64: Waiter] = [:]
        var lastNumber: UInt64 = 0
        var shutDown = false

        mutating func nextNumber() -> UInt64 {
            lastNumber &+= 1
            return lastNumber
        }

        /// The waiter that came first.
        mutating func removeFirstWaiter() -> Waiter? {
            guard let first = waiters.keys.min() else { return nil }
            return waiters.removeValue(forKey: first)
        }
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

    /// Sends `request` and reads its response, all within `timeout`: waiting for a connection, connecting, sending and
    /// reading the whole answer. A connection the deadline interrupts is closed, never reused.
    func execute(_ request: Request, timeout: TimeAmount) async throws(Failure) -> Response {
        let deadline = NIODeadline.now() + timeout
        var request = request
        request.headers.replaceOrAdd(name: "Host", value: origin.hostHeader)
        if let body = request.body {
            request.headers.replaceOrAdd(name: "Content-Length", value: "\(body.readableBytes)")
        }
        let head = HTTPRequestHead(
            version: .http1_1, method: request.method, uri: origin.basePath + request.path, headers: request.headers)
        for attempt in 0..<2 {
            let (channel, reused) = try await connection(deadline: deadline)
            let remaining = deadline - NIODeadline.now()
            guard remaining > .zero else {
                release(channel, reusable: true)
                throw .timedOut
            }
            let exchange = Exchange(
                head: head, body: request.body, timeout: remaining, limit: configuration.maximumResponseBytes,
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

    /// Closes the idle connections, fails the requests waiting for one, and refuses new requests. Requests in flight
    /// finish (within their deadlines), and their connections are closed as they are released.
    func shutdown() {
        let (idle, waiters) = pool.withLock { pool in
            pool.shutDown = true
            defer {
                pool.open -= pool.idle.count
                pool.idle = []
                pool.waiters = [:]
            }
            return (pool.idle, Array(pool.waiters.values))
        }
        for connection in idle {
            connection.timer?.cancel()
            connection.channel.close(promise: nil)
        }
        for waiter in waiters {
            waiter.timer?.cancel()
            waiter.continuation.resume(throwing: Failure.shutDown)
        }
    }

    /// Connections open (idle or in use) and requests waiting for one, for tests and metrics.
    var counts: (open: Int, idle: Int, waiting: Int) {
        pool.withLock { ($0.open, $0.idle.count, $0.waiters.count) }
    }

    // MARK: The pool

    /// GET, HEAD, PUT, DELETE, OPTIONS and TRACE: sending one twice has the effect of sending it once.
    static func isIdempotent(_ method: HTTPMethod) -> Bool {
        switch method {
        case .GET, .HEAD, .PUT, .DELETE, .OPTIONS, .TRACE: true
        default: false
        }
    }

    private func connection(deadline: NIODeadline) async throws(Failure) -> (any Channel, reused: Bool) {
        switch try await lease(deadline: deadline) {
        case .reuse(let channel): return (channel, true)
        case .connect:
            do { return (try await connect(deadline: deadline), false) } catch {
                // The place this connection would have taken goes to a waiter, or back to the pool.
                handOn()
                throw error
            }
        }
    }

    /// An idle connection, the right to open one, or a place in line until one of those, at most until `deadline`.
    private func lease(deadline: NIODeadline) async throws(Failure) -> Lease {
        let number = pool.withLock { $0.nextNumber() }
        do {
            return try await withTaskCancellationHandler {
                try await withCheckedThrowingContinuation { continuation in
                    enum Decision {
                        case now(Lease)
                        case wait
                        case fail(Failure)
                    }
                    let decision: Decision = pool.withLock { pool in
                        if pool.shutDown { return .fail(.shutDown) }
                        while let connection = pool.idle.popLast() {
                            connection.timer?.cancel()
                            if connection.channel.isActive { return .now(.reuse(connection.channel)) }
                            pool.open -= 1
                        }
                        if pool.open < configuration.maximumConnections {
                            pool.open += 1
                            return .now(.connect)
                        }
                        guard pool.waiters.count < configuration.maximumWaiters else { return .fail(.overloaded) }
                        pool.waiters[number] = Waiter(continuation: continuation)
                        return .wait
                    }
                    switch decision {
                    case .now(let lease): continuation.resume(returning: lease)
                    case .fail(let failure): continuation.resume(throwing: failure)
                    case .wait:
                        let timer = group.any().scheduleTask(deadline: deadline) {
                            self.stopWaiting(number, with: .timedOut)
                        }
                        let waiting = pool.withLock { pool in
                            guard pool.waiters[number] != nil else { return false }
                            pool.waiters[number]?.timer = timer
                            return true
                        }
                        if !waiting { timer.cancel() }
                        // Cancelled before it was in line: the cancellation handler found nothing to remove.
                        if Task.isCancelled { stopWaiting(number, with: .cancelled) }
                    }
                }
            } onCancel: {
                stopWaiting(number, with: .cancelled)
            }
        } catch {
            throw (error as? Failure) ?? .shutDown
        }
    }

    /// A waiter's deadline passed, or its task was cancelled: it leaves the line.
    private func stopWaiting(_ number: UInt64, with failure: Failure) {
        guard let waiter = pool.withLock({ $0.waiters.removeValue(forKey: number) }) else { return }
        waiter.timer?.cancel()
        waiter.continuation.resume(throwing: failure)
    }

    private func release(_ channel: any Channel, reusable: Bool) {
        enum Next {
            case handed(Waiter)
            case kept(UInt64)
            case closed(Waiter?)
        }
        let next: Next = pool.withLock { pool in
            if reusable, channel.isActive, !pool.shutDown {
                if let waiter = pool.removeFirstWaiter() { return .handed(waiter) }
                let number = pool.nextNumber()
                pool.idle.append(IdleConnection(channel: channel, number: number))
                return .kept(number)
            }
            if let waiter = pool.removeFirstWaiter() { return .closed(waiter) }
            pool.open -= 1
            return .closed(nil)
        }
        switch next {
        case .handed(let waiter):
            waiter.timer?.cancel()
            waiter.continuation.resume(returning: .reuse(channel))
        case .kept(let number):
            let timer = channel.eventLoop.scheduleTask(in: configuration.idleTimeout) { self.closeIfStillIdle(number) }
            let stillIdle = pool.withLock { pool in
                guard let index = pool.idle.firstIndex(where: { $0.number == number }) else { return false }
                pool.idle[index].timer = timer
                return true
            }
            if !stillIdle { timer.cancel() }
        case .closed(let waiter):
            channel.close(promise: nil)
            waiter?.timer?.cancel()
            waiter?.continuation.resume(returning: .connect)
        }
    }

    /// The idle timer of a kept connection: closes it unless it was taken (and maybe kept again) since.
    private func closeIfStillIdle(_ number: UInt64) {
        let channel: (any Channel)? = pool.withLock { pool in
            guard let index = pool.idle.firstIndex(where: { $0.number == number }) else { return nil }
            pool.open -= 1
            return pool.idle.remove(at: index).channel
        }
        channel?.close(promise: nil)
    }

    /// A connection attempt failed: its place goes to the next waiter (who tries in turn), or is freed.
    private func handOn() {
        let waiter: Waiter? = pool.withLock { pool in
            if let waiter = pool.removeFirstWaiter() { return waiter }
            pool.open -= 1
            return nil
        }
        waiter?.timer?.cancel()
        waiter?.continuation.resume(returning: .connect)
    }

    private func connect(deadline: NIODeadline) async throws(Failure) -> any Channel {
        let tls = self.tls
        // SNI names a host, never an address (RFC 6066 §3); `1password.example` is a name.
        let isAddress = origin.host.contains(":") || origin.host.split(separator: ".").count == 4
            && origin.host.split(separator: ".").allSatisfy { UInt8($0) != nil }
        let serverName = isAddress ? nil : origin.host
        let remaining = deadline - NIODeadline.now()
        guard remaining > .zero else { throw .timedOut }
        do {
            return try await ClientBootstrap(group: group)
                .connectTimeout(min(configuration.connectTimeout, remaining))
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
        } catch ChannelError.connectTimeout where remaining < configuration.connectTimeout {
            // Cut short by the request's deadline, not by the connect timeout: the request timed out.
            throw .timedOut
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
