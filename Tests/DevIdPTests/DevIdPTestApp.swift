import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import JSON
import JWTAuth
import Logging
import NIOCore
import ServiceSupport
import TestSupport
import Testing

@testable import DevIdP

/// DevIdP built as in production, with the checked-in users, a gateway client, a machine client and a manual clock.
struct DevIdPTestApp {
    static let issuer = "http://localhost:8790/"
    static let gatewayID = "mcp-gateway"
    static let gatewaySecret = "gateway-secret"
    static let machineID = "todos-cli"
    static let machineSecret = "cli-secret"
    static let callback = "http://localhost:8788/callback"
    private static let signingKey = Task { try await RSASigningKey.generate() }

    let clock = ManualClock(Date(timeIntervalSince1970: 1_750_000_000))
    let signingKey: RSASigningKey
    let configuration: DevIdPConfiguration

    init(environment: [String: String] = [:]) async throws {
        self.signingKey = try await Self.signingKey.value
        var values = [
            "AUTH0_CLIENT_ID": Self.gatewayID, "AUTH0_CLIENT_SECRET": Self.gatewaySecret,
            "DEVIDP_M2M_CLIENT_ID": Self.machineID, "DEVIDP_M2M_CLIENT_SECRET": Self.machineSecret,
            "DEVIDP_ACCESS_TOKEN_TTL": "600",
        ]
        values.merge(environment) { _, new in new }
        self.configuration = try DevIdPConfiguration.load(from: Settings(environment: values))
    }

    func run(_ test: @escaping @Sendable (any TestClientProtocol) async throws -> Void) async throws {
        let app = try await buildApplication(
            configuration: configuration, signingKey: signingKey, clock: clock, logger: Logger(label: "test"))
        try await app.test(.router, test)
    }

    /// A verifier for DevIdP's access tokens.
    func verifier(audience: String = "urn:todos-api") async throws -> JWTVerifier {
        JWTVerifier(
            configuration: .init(issuer: Self.issuer, audiences: [audience]),
            keys: KeySet([try await signingKey.verificationKey()]), clock: clock)
    }
}

extension TestClientProtocol {
    /// POSTs a form body.
    func postForm(_ uri: String, _ fields: [(String, String)], headers: HTTPFields = [:]) async throws -> TestResponse {
        var headers = headers
        headers[.contentType] = "application/x-www-form-urlencoded"
        let body = fields.map { "\(RedirectURI.formEncode($0.0))=\(RedirectURI.formEncode($0.1))" }.joined(
            separator: "&")
        return try await execute(uri: uri, method: .post, headers: headers, body: ByteBuffer(string: body))
    }

    /// Runs `/authorize` and the sign-in form; returns the final redirect's `Location`.
    func signIn(query: [(String, String)], username: String = "alice", password: String? = nil) async throws -> String {
        let page = try await execute(uri: "/authorize?" + encode(query), method: .get)
        #expect(page.status == .ok)
        let transaction = try #require(hiddenField("transaction", in: String(buffer: page.body)))
        let response = try await postForm(
            "/authorize",
            [
                ("transaction", transaction), ("username", username), ("password", password ?? "\(username)-password"),
                ("action", "login"),
            ])
        #expect(response.status == .seeOther)
        return try #require(response.headers[.location])
    }
}

func encode(_ query: [(String, String)]) -> String {
    query.map { "\(RedirectURI.formEncode($0.0))=\(RedirectURI.formEncode($0.1))" }.joined(separator: "&")
}

func hiddenField(_ name: String, in html: String) -> String? {
    guard let range = html.range(of: #"name="\#(name)" value=""#) else { return nil }
    return String(html[range.upperBound...].prefix(while: { $0 != "\"" }))
}

func queryItem(_ name: String, of url: String) -> String? {
    URLComponents(string: url)?.queryItems?.first { $0.name == name }?.value
}

func json(_ response: TestResponse) throws -> [String: JSONValue] {
    try JSONDecoder().decode([String: JSONValue].self, from: Data(response.body.readableBytesView))
}

func basic(_ id: String, _ secret: String) -> HTTPFields {
    [.authorization: "Basic " + Data("\(id):\(secret)".utf8).base64EncodedString()]
}

/// A PKCE pair.
struct PKCEPair {
    var verifier = PKCE.makeVerifier()
    var challenge: String { PKCE.challenge(for: verifier) }
}
