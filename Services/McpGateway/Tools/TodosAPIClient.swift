import AsyncHTTPClient
import Foundation
import JWTAuth
import NIOCore
import NIOHTTP1

/// Calls TodosAPI for the user (never with a gateway token), through one shared HTTP client with timeouts.
struct TodosAPIClient: Sendable {
    let baseURL: String
    let client: HTTPClient

    struct Reply: Sendable {
        let status: Int
        let body: JSONValue?
        let challenge: String?

        /// The API's own error message, when it sent one.
        var message: String? { body?.objectValue?["error_description"]?.stringValue }
    }

    /// The API could not be reached or answered something that is not JSON.
    struct Unreachable: Error, CustomStringConvertible {
        let description: String
    }

    /// How a request proves who it is for.
    enum Credential: Sendable {
        /// `Authorization: Bearer`: an access token of the API's issuer.
        case bearer(String)
        /// `Cf-Access-Token`: a Cloudflare Access token, which Access in front of TodosAPI exchanges for an assertion
        /// of TodosAPI's own application (a linked app token).
        case accessToken(String)
    }

    func send(_ method: HTTPMethod, _ path: String, credential: Credential, body: JSONValue? = nil) async throws
        -> Reply
    {
        var request = HTTPClientRequest(url: baseURL + path)
        request.method = method
        switch credential {
        case .bearer(let token): request.headers.add(name: "Authorization", value: "Bearer \(token)")
        case .accessToken(let token): request.headers.add(name: "Cf-Access-Token", value: token)
        }
        request.headers.add(name: "Accept", value: "application/json")
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: try JSONEncoder().encode(body)))
        }
        do {
            let response = try await client.execute(request, timeout: .seconds(10))
            let data = try await response.body.collect(upTo: 1024 * 1024)
            let json =
                data.readableBytes == 0
                ? nil : try? JSONValue(parsing: data.readableBytesView)
            return Reply(
                status: Int(response.status.code), body: json,
                challenge: response.headers.first(name: "WWW-Authenticate"))
        } catch {
            throw Unreachable(description: "The Todos API at \(baseURL) is unreachable (\(error))")
        }
    }
}
