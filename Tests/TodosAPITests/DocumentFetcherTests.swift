import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import JWTAuth
import Testing

@Suite("Fetching keys and discovery documents")
struct DocumentFetcherTests {
    @Test func redirectsAreNotFollowed() async throws {
        let router = Router()
        router.get("moved") { _, _ in
            Response(status: .found, headers: [.location: "/keys"])
        }
        router.get("keys") { _, _ in #"{"keys":[]}"# }
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        try await app.test(.live) { client in
            let port = try #require(client.port)
            let fetcher = HTTPDocumentFetcher()
            #expect(try await fetcher.fetch("http://127.0.0.1:\(port)/keys").body == Array(#"{"keys":[]}"#.utf8))
            // A key set that moved is an error, not the document at the other end (which could be another issuer's,
            // or served over plain http).
            await #expect {
                try await fetcher.fetch("http://127.0.0.1:\(port)/moved")
            } throws: { String(describing: $0).contains("302") }
        }
    }
}
