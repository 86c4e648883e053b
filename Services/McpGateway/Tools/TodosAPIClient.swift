import AsyncHTTPClient
import Foundation
import JWTAuth
import NIOCore
import NIOHTTP1

/// Calls TodosAPI with the user's upstream access token (never a gateway token), through one shared HTTP client with
/// timeouts.
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

    func send(_ method: HTTPMethod, _ path: String, token: String, body: JSONValue? = nil) async throws -> Reply {
        var request = HTTPClientRequest(url: baseURL + path)
        request.method = method
        request.headers.add(name: "Authorization", value: "Bearer \(token)")
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
