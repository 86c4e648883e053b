import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import ServiceSupport

/// Posts `application/x-www-form-urlencoded` requests to the provider's token endpoint. Injected so that tests can
/// play the provider (and count its refreshes) without a network.
protocol FormPosting: Sendable {
    func post(form: [(String, String)], to url: String, headers: [(String, String)]) async throws
        -> (status: Int, body: [UInt8])
}

/// ``FormPosting`` with async-http-client: a 10-second timeout and a 256 KiB answer limit.
struct HTTPFormPoster: FormPosting {
    let client: HTTPClient

    func post(form: [(String, String)], to url: String, headers: [(String, String)]) async throws
        -> (status: Int, body: [UInt8])
    {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        let body = form.map { RedirectURI.formEncode($0.0) + "=" + RedirectURI.formEncode($0.1) }.joined(separator: "&")
        request.body = .bytes(ByteBuffer(string: body))
        let response = try await client.execute(request, timeout: .seconds(10))
        let data = try await response.body.collect(upTo: 256 * 1024)
        return (Int(response.status.code), Array(buffer: data))
    }
}
