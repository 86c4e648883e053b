import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing

@testable import ServiceSupport

@Suite("Error rendering")
struct MiddlewareTests {
    struct Boom: Error {}

    func app() -> some ApplicationProtocol {
        let router = Router()
        router.add(middleware: AccessLogMiddleware())
        router.add(middleware: ErrorRenderingMiddleware())
        router.get("boom") { _, _ -> String in throw Boom() }
        router.get("http") { _, _ -> String in throw HTTPError(.badRequest, message: "bad thing") }
        router.post("big") { request, _ -> String in
            _ = try await request.collectBody(limit: 4)
            return "ok"
        }
        return Application(router: router)
    }

    func object(_ response: TestResponse) throws -> [String: String] {
        try JSONDecoder().decode([String: String].self, from: Data(response.body.readableBytesView))
    }

    @Test func unexpectedErrorsAre500WithoutInternals() async throws {
        try await app().test(.router) { client in
            try await client.execute(uri: "/boom", method: .get) { response in
                #expect(response.status == .internalServerError)
                let body = try object(response)
                #expect(body["error"] == "server_error")
                let requestID = try #require(response.headers[.requestID])
                #expect(body["error_description"] == "An unexpected error occurred (request id \(requestID))")
                #expect(body["error_description"]?.contains("Boom") == false)
            }
        }
    }

    @Test func frameworkErrorsBecomeJSON() async throws {
        try await app().test(.router) { client in
            try await client.execute(uri: "/http", method: .get) { response in
                #expect(response.status == .badRequest)
                let body = try object(response)
                #expect(body == ["error": "invalid_request", "error_description": "bad thing"])
            }
            try await client.execute(uri: "/nowhere", method: .get) { response in
                #expect(response.status == .notFound)
                let body = try object(response)
                #expect(body["error"] == "not_found")
            }
            try await client.execute(uri: "/big", method: .post, body: ByteBuffer(string: "too large")) { response in
                #expect(response.status == .contentTooLarge)
                let body = try object(response)
                #expect(body["error"] == "request_too_large")
            }
        }
    }
}
