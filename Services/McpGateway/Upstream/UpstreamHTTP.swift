import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import ServiceSupport

/// The gateway's requests to the provider's token and userinfo endpoints. Injected so that tests can play the
/// provider (and count its refreshes) without a network.
protocol UpstreamHTTP: Sendable {
    /// POSTs an `application/x-www-form-urlencoded` body.
    func post(form: [(String, String)], to url: String, headers: [(String, String)]) async throws
        -> (status: Int, body: [UInt8])
    /// GETs `url`.
    func get(_ url: String, headers: [(String, String)]) async throws -> (status: Int, body: [UInt8])
}

/// ``UpstreamHTTP`` with async-http-client and a 256 KiB answer limit. The deadline of each call is
/// ``UpstreamProvider``'s, around the whole answer (async-http-client's own stops at the response head): when it
/// passes, the task is cancelled, which cancels the request and closes its connection.
struct AsyncUpstreamHTTP: UpstreamHTTP {
    let client: HTTPClient

    func post(form: [(String, String)], to url: String, headers: [(String, String)]) async throws
        -> (status: Int, body: [UInt8])
    {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
        let body = form.map { RedirectURI.formEncode($0.0) + "=" + RedirectURI.formEncode($0.1) }.joined(separator: "&")
        request.body = .bytes(ByteBuffer(string: body))
        return try await send(request, headers: headers)
    }

    func get(_ url: String, headers: [(String, String)]) async throws -> (status: Int, body: [UInt8]) {
        try await send(HTTPClientRequest(url: url), headers: headers)
    }

    private func send(_ request: HTTPClientRequest, headers: [(String, String)]) async throws
        -> (status: Int, body: [UInt8])
    {
        var request = request
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        // A backstop only: the caller's deadline is shorter.
        let response = try await client.execute(request, timeout: .seconds(300))
        let data = try await response.body.collect(upTo: 256 * 1024)
        return (Int(response.status.code), Array(buffer: data))
    }
}
