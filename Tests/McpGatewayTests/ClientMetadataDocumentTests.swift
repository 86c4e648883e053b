import Foundation
import HTTPTypes
import HummingbirdTesting
import JSON
import JWTAuth
import Logging
import NIOCore
import ServiceSupport
import TestSupport
import Testing

@testable import McpGateway

@Suite("Client ID Metadata Documents: address policy, URL and document rules")
struct ClientMetadataRulesTests {
    @Test(arguments: ["8.8.8.8", "1.1.1.1", "93.184.216.34", "2606:4700:4700::1111", "[2a00:1450:4001::200e]"])
    func publicAddressesAreAllowed(_ text: String) throws {
        let address = try #require(PublicAddressPolicy.parse(text))
        #expect(PublicAddressPolicy(allowPrivate: false).allows(address))
    }

    @Test(arguments: [
        "127.0.0.1", "127.1.2.3", "10.0.0.1", "172.16.0.1", "172.31.255.255", "192.168.1.1", "169.254.169.254",
        "100.64.0.1", "0.0.0.0", "224.0.0.1", "255.255.255.255", "192.0.2.1", "198.51.100.7", "203.0.113.9",
        "198.18.0.1", "::1", "::", "fe80::1", "fc00::1", "fd12:3456::1", "ff02::1", "2001:db8::1",
        "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254", "64:ff9b::a00:1", "2002:7f00:1::1",
        "2001:0:4136:e378::1", "64:ff9b:1::808:808", "64:ff9b:1:ffff::1", "::ffff:0:808:808", "::ffff:0:7f00:1",
    ])
    func privateLoopbackAndReservedAddressesAreRefused(_ text: String) throws {
        let address = try #require(PublicAddressPolicy.parse(text))
        #expect(!PublicAddressPolicy(allowPrivate: false).allows(address))
    }

    @Test func developmentAllowsPrivateAddressesButNeverUnusableOnes() throws {
        let policy = PublicAddressPolicy(allowPrivate: true)
        for text in ["127.0.0.1", "10.0.0.1", "192.168.1.1", "::1"] {
            #expect(policy.allows(try #require(PublicAddressPolicy.parse(text))), "\(text)")
        }
        for text in ["0.0.0.0", "224.0.0.1", "::", "ff02::1"] {
            #expect(!policy.allows(try #require(PublicAddressPolicy.parse(text))), "\(text)")
        }
    }

    @Test func addressesAreParsedAndFormatted() {
        #expect(PublicAddressPolicy.parse("example.com") == nil)
        #expect(PublicAddressPolicy.parse("1.2.3") == nil)
        #expect(PublicAddressPolicy.format([10, 0, 0, 1]) == "10.0.0.1")
        #expect(PublicAddressPolicy.format(PublicAddressPolicy.parse("2001:db8::1")!) == "2001:db8::1")
    }

    @Test func aDocumentURLIsHTTPSWithAPath() throws {
        let url = try ClientMetadataDocumentURL("https://App.example/oauth/client.json", allowLoopbackHTTP: false)
        #expect(url.host == "app.example")
        #expect(url.port == 443)
        #expect(url.text == "https://App.example/oauth/client.json")
        #expect(url.fetchURL == "https://app.example/oauth/client.json")
        // Another port only in development: the gateway is no port scanner.
        #expect(throws: ClientMetadataDocumentError.self) {
            try ClientMetadataDocumentURL("https://app.example:8443/oauth/client.json", allowLoopbackHTTP: false)
        }
        #expect(
            try ClientMetadataDocumentURL("https://app.example:8443/client.json", allowLoopbackHTTP: true).port == 8443)
        let loopback = try ClientMetadataDocumentURL("http://127.0.0.1:4000/client.json", allowLoopbackHTTP: true)
        #expect(loopback.port == 4000)
    }

    @Test(arguments: [
        ("http://app.example/client.json", "must use https"),
        ("http://127.0.0.1:4000/client.json", "must use https"),
        ("https://app.example", "must have a path"),
        ("https://app.example/", "must have a path"),
        ("https://user:pw@app.example/client.json", "user name or password"),
        ("https://app.example/client.json#frag", "fragment"),
        ("https://app.example/a/../client.json", ". or .. path segments"),
        ("https://app.example/a/%2E%2e/client.json", ". or .. path segments"),
        ("https://app.example/./client.json", ". or .. path segments"),
        ("https://app example/client.json", "not a valid absolute URL"),
        ("https://%61pp.example/client.json", "must not be percent-encoded"),
        ("ftp://app.example/client.json", "must use https"),
        ("https://app.example/" + String(repeating: "a", count: 2100), "longer than"),
    ])
    func invalidDocumentURLsAreRefusedWithTheReason(_ text: String, _ reason: String) {
        #expect {
            try ClientMetadataDocumentURL(text, allowLoopbackHTTP: false)
        } throws: { error in
            let error = error as? ClientMetadataDocumentError
            return error?.kind == .invalidURL && error?.description.contains(reason) == true
        }
    }

    @Test func plainHTTPIsForLoopbackOnlyEvenInDevelopment() {
        #expect(throws: ClientMetadataDocumentError.self) {
            try ClientMetadataDocumentURL("http://192.168.1.10/client.json", allowLoopbackHTTP: true)
        }
    }

    @Test(
        arguments: [
            (nil, 300.0), ("max-age=60", 60), ("public, max-age=999999", 86_400), ("no-store", 0),
            ("no-cache, max-age=60", 0), ("max-age=abc", 300), ("private, max-age=\"120\"", 120),
        ] as [(String?, TimeInterval)])
    func cacheHeadersDecideHowLongADocumentIsReused(_ header: String?, _ lifetime: TimeInterval) {
        #expect(HTTPClientMetadataFetcher.lifetime(cacheControl: header.map { [$0] } ?? []) == lifetime)
    }

    @Test func jsonMediaTypes() {
        #expect(HTTPClientMetadataFetcher.isJSON("application/json"))
        #expect(HTTPClientMetadataFetcher.isJSON("Application/JSON; charset=utf-8"))
        #expect(HTTPClientMetadataFetcher.isJSON("application/oauth-client+json"))
        #expect(!HTTPClientMetadataFetcher.isJSON("text/html"))
        #expect(!HTTPClientMetadataFetcher.isJSON("text/plain"))
        #expect(!HTTPClientMetadataFetcher.isJSON(nil))
    }

    static let url = try! ClientMetadataDocumentURL("https://app.example/client.json", allowLoopbackHTTP: false)

    func parse(_ json: String) throws(ClientMetadataDocumentError) -> RegisteredClient {
        try ClientMetadataDocument.client(
            from: Array(json.utf8), url: Self.url, supportedScopes: ["read:todos", "offline_access"], fetchedAt: Date())
    }

    @Test func aValidDocumentIsAPublicClient() throws {
        let client = try parse(
            #"{"client_id":"https://app.example/client.json","client_name":"App","client_uri":"https://app.example","#
                + #""redirect_uris":["https://app.example/cb"],"grant_types":["authorization_code"],"#
                + #""token_endpoint_auth_method":"none"}"#)
        #expect(client.id == "https://app.example/client.json")
        #expect(client.isPublic)
        #expect(client.secretDigest == nil)
        #expect(client.name == "App")
        #expect(client.redirectURIs == ["https://app.example/cb"])
        #expect(client.grantTypes == ["authorization_code"])
    }

    @Test(arguments: [
        ("[1,2]", "not a JSON object"),
        ("{", "not a JSON object"),
        (#"{"client_name":"A","redirect_uris":["https://a.example/cb"]}"#, "client_id must be exactly its own URL"),
        (
            #"{"client_id":"https://app.example/client.json/","client_name":"A","redirect_uris":["https://a.example/cb"]}"#,
            "client_id must be exactly"
        ),
        (#"{"client_id":"https://app.example/client.json","client_name":"A"}"#, "redirect_uris is required"),
        (
            #"{"client_id":"https://app.example/client.json","redirect_uris":["https://a.example/cb"]}"#,
            "client_name is required"
        ),
        (
            #"{"client_id":"https://app.example/client.json","client_name":"A","redirect_uris":["https://a.example/cb"],"client_secret":"s"}"#,
            "must not contain client_secret"
        ),
        (
            #"{"client_id":"https://app.example/client.json","client_name":"A","redirect_uris":["https://a.example/cb"],"client_secret_expires_at":0}"#,
            "must not contain client_secret_expires_at"
        ),
        (
            #"{"client_id":"https://app.example/client.json","client_name":"A","redirect_uris":["https://a.example/cb"],"token_endpoint_auth_method":"client_secret_basic"}"#,
            "token_endpoint_auth_method must be none"
        ),
        (
            #"{"client_id":"https://app.example/client.json","client_name":"A","redirect_uris":["https://a.example/cb"],"token_endpoint_auth_method":"private_key_jwt"}"#,
            "token_endpoint_auth_method must be none"
        ),
        (
            #"{"client_id":"https://app.example/client.json","client_name":"A","redirect_uris":["http://evil.example/cb"]}"#,
            "redirect URI"
        ),
        (
            #"{"client_id":"https://app.example/client.json","client_name":"A","redirect_uris":["https://a.example/cb"],"grant_types":["client_credentials"]}"#,
            "grant_types"
        ),
    ])
    func invalidDocumentsAreRefusedWithTheReason(_ json: String, _ reason: String) {
        #expect {
            try parse(json)
        } throws: { error in
            let error = error as? ClientMetadataDocumentError
            return error?.kind == .invalidDocument && error?.description.contains(reason) == true
        }
    }
}

/// Names resolved as a test says.
struct FakeHostResolver: HostResolving {
    let table: [String: [String]]

    func addresses(of host: String, port: Int) async throws -> [[UInt8]] {
        guard let addresses = table[host] else { throw SystemHostResolver.Failure(description: "no such host") }
        return addresses.compactMap(PublicAddressPolicy.parse)
    }
}

@Suite("Client ID Metadata Documents: fetching")
struct ClientMetadataFetcherTests {
    let resolver = FakeHostResolver(table: [
        "internal.example": ["10.0.0.5"], "rebind.example": ["93.184.216.34", "127.0.0.1"],
        "metadata.example": ["169.254.169.254"], "empty.example": [],
    ])

    func fetch(_ text: String, allowPrivate: Bool = false, timeout: Duration = .seconds(5))
        async throws(ClientMetadataDocumentError) -> FetchedClientMetadata
    {
        let fetcher = HTTPClientMetadataFetcher(
            policy: PublicAddressPolicy(allowPrivate: allowPrivate), resolver: resolver, timeout: timeout)
        return try await fetcher.fetch(try ClientMetadataDocumentURL(text, allowLoopbackHTTP: allowPrivate))
    }

    func failure(_ text: String, allowPrivate: Bool = false, timeout: Duration = .seconds(5)) async
        -> ClientMetadataDocumentError?
    {
        do {
            _ = try await fetch(text, allowPrivate: allowPrivate, timeout: timeout)
            return nil
        } catch { return error }
    }

    @Test(arguments: [
        "https://internal.example/client.json", "https://rebind.example/client.json",
        "https://ReBind.Example/client.json",
        "https://metadata.example/latest/meta-data", "https://127.0.0.1/client.json", "https://[::1]/client.json",
        "https://10.1.2.3/client.json", "https://[::ffff:127.0.0.1]/client.json",
    ])
    func privateAddressesAreRefusedBeforeAnyConnection(_ url: String) async {
        let error = await failure(url)
        #expect(error?.kind == .unavailable)
        #expect(error?.description.contains("private, loopback or reserved address") == true)
    }

    @Test(arguments: [
        "https://localhost/client.json", "https://2130706433/client.json", "https://0x7f.1/client.json",
        "https://127.1/client.json",
    ])
    func namesTheSystemResolvesToLoopbackAreRefused(_ url: String) async {
        let fetcher = HTTPClientMetadataFetcher(
            policy: PublicAddressPolicy(allowPrivate: false), resolver: SystemHostResolver())
        do {
            _ = try await fetcher.fetch(try ClientMetadataDocumentURL(url, allowLoopbackHTTP: false))
            Issue.record("\(url) was fetched")
        } catch {
            #expect(error.kind == .unavailable)
            #expect(error.description.contains("private, loopback or reserved address") == true, "\(error)")
        }
    }

    @Test func unresolvableNamesAreReported() async {
        #expect(
            await failure("https://nowhere.example/client.json")?.description.contains("could not be resolved") == true)
        #expect(await failure("https://empty.example/client.json")?.description.contains("has no address") == true)
    }

    @Test func aDocumentIsFetchedWithItsCacheLifetime() async throws {
        let server = MetadataDocumentServer([
            "/client.json": MetadataDocumentServer.document(cacheControl: "max-age=120")
        ])
        try await server.run { base in
            let fetched = try await fetch(base + "/client.json", allowPrivate: true)
            #expect(fetched.lifetime == 120)
            #expect(String(decoding: fetched.body, as: UTF8.self).contains(#""client_id":"\#(base)/client.json""#))
        }
    }

    @Test func unacceptableResponsesAreRefused() async throws {
        let big = String(repeating: " ", count: 6 * 1024)
        let server = MetadataDocumentServer([
            "/redirect": .init(status: .found, headers: [.location: "/client.json"]) { _ in "" },
            "/missing": .init(status: .notFound) { _ in "" },
            "/html": .init(headers: [.contentType: "text/html"]) { _ in "<html></html>" },
            "/untyped": .init(headers: [:]) { _ in "{}" },
            "/big": .init { url in #"{"client_id":"\#(url)"\#(big)}"# },
            "/slow": .init(delay: .seconds(5)) { _ in "{}" },
        ])
        try await server.run { base in
            let redirect = await failure(base + "/redirect", allowPrivate: true)
            #expect(redirect?.description.contains("HTTP 302 (redirects are not followed)") == true)
            #expect(server.fetches("/client.json") == 0)
            #expect(await failure(base + "/missing", allowPrivate: true)?.description.contains("HTTP 404") == true)
            #expect(
                await failure(base + "/html", allowPrivate: true)?.description.contains("application/json") == true)
            #expect(
                await failure(base + "/untyped", allowPrivate: true)?.description.contains("application/json") == true)
            let big = await failure(base + "/big", allowPrivate: true)
            #expect(big?.kind == .invalidDocument)
            #expect(big?.description.contains("larger than 5120 bytes") == true)
            let started = ContinuousClock.now
            let slow = await failure(base + "/slow", allowPrivate: true, timeout: .milliseconds(500))
            #expect(slow?.kind == .unavailable)
            // Far from the 5 s the document takes: the fetch gave up at its deadline.
            #expect(ContinuousClock.now - started < .seconds(3))
        }
    }

    @Test func aClosedPortIsUnavailable() async {
        let error = await failure("http://127.0.0.1:9/client.json", allowPrivate: true, timeout: .seconds(1))
        // Within the deadline either way: AsyncHTTPClient retries refused connections until its connect timeout.
        #expect(error?.kind == .unavailable)
        #expect(error?.description.contains("127.0.0.1:9") == true || error?.description.contains("within") == true)
    }
}

@Suite("Client ID Metadata Documents at /authorize and /token")
struct ClientMetadataFlowTests {
    typealias App = GatewayTestApp
    static let development = ["CLIENT_ID_METADATA_ALLOW_PRIVATE": "true"]

    func authorizeQuery(_ clientID: String, redirectURI: String = App.redirectURI) -> String {
        "/authorize?"
            + formBody([
                ("response_type", "code"), ("client_id", clientID), ("redirect_uri", redirectURI),
                ("code_challenge", PKCEPair().challenge), ("code_challenge_method", "S256"), ("state", "s"),
            ])
    }

    @Test func theAuthorizationServerAdvertisesMetadataDocuments() async throws {
        try await App().run { client in
            let metadata = try jsonObject(
                try await client.execute(uri: "/.well-known/oauth-authorization-server", method: .get))
            #expect(metadata["client_id_metadata_document_supported"] == .bool(true))
        }
        try await App(environment: ["CLIENT_ID_METADATA_DOCUMENTS": "false"]).run { client in
            let metadata = try jsonObject(
                try await client.execute(uri: "/.well-known/oauth-authorization-server", method: .get))
            #expect(metadata["client_id_metadata_document_supported"] == nil)
        }
    }

    @Test func aClientSignsInWithItsDocumentAndUsesTheTokenEndpoint() async throws {
        let server = MetadataDocumentServer([
            "/oauth/client.json": MetadataDocumentServer.document(extra: #","client_uri":"https://elsewhere.example""#)
        ])
        try await server.run { base in
            let clientID = base + "/oauth/client.json"
            let app = try await App(environment: Self.development)
            try await app.run { client in
                let consent = try await client.execute(uri: authorizeQuery(clientID), method: .get)
                #expect(consent.status == .ok)
                let html = String(buffer: consent.body)
                #expect(html.contains("Metadata Client"))
                #expect(html.contains("Its details are published by <strong>127.0.0.1</strong>"))
                #expect(html.contains("your browser goes to <strong>localhost</strong>, which is not 127.0.0.1"))
                #expect(!html.contains("elsewhere.example"))

                let pkce = PKCEPair()
                let redirect = try await client.authorize(app: app, clientID: clientID, pkce: pkce)
                let token = try await client.postForm(
                    "/token",
                    [
                        ("grant_type", "authorization_code"), ("code", try #require(redirect["code"])),
                        ("client_id", clientID), ("redirect_uri", App.redirectURI), ("code_verifier", pkce.verifier),
                    ])
                #expect(token.status == .ok)
                let refresh = try #require(try jsonObject(token)["refresh_token"]?.stringValue)
                let refreshed = try await client.postForm(
                    "/token", [("grant_type", "refresh_token"), ("refresh_token", refresh), ("client_id", clientID)])
                #expect(refreshed.status == .ok)
                let stored = try #require(try await app.storage.clients.client(id: clientID))
                #expect(stored.isPublic && stored.name == "Metadata Client")
                #expect(stored.redirectURIs == [App.redirectURI])
                // Cached: the document was fetched once, by the first /authorize.
                #expect(server.fetches("/oauth/client.json") == 1)
            }
        }
    }

    @Test func theDocumentsRedirectURIsAreEnforced() async throws {
        let server = MetadataDocumentServer(["/client.json": MetadataDocumentServer.document()])
        try await server.run { base in
            try await App(environment: Self.development).run { client in
                let response = try await client.execute(
                    uri: authorizeQuery(base + "/client.json", redirectURI: "http://localhost:3030/other"), method: .get
                )
                #expect(response.status == .badRequest)
                #expect(response.headers[.location] == nil)
                #expect(String(buffer: response.body).contains("Unregistered redirect URI"))
            }
        }
    }

    @Test func unusableDocumentsAreAPageWithTheReasonNeverARedirect() async throws {
        let server = MetadataDocumentServer([
            "/secret.json": MetadataDocumentServer.document(extra: #","client_secret":"hunter2""#),
            "/other-id.json": .init { _ in
                #"{"client_id":"https://other.example/c.json","client_name":"X","redirect_uris":["http://localhost:3030/callback"]}"#
            },
        ])
        try await server.run { base in
            try await App(environment: Self.development).run { client in
                // The same page whatever went wrong, with the request id; the reason is in the log only, so that the
                // page cannot be used to probe hosts. (The reasons are as the log words them: a bare "404" would also
                // be found in a port such as 40461 of the document's URL, which the page shows.)
                let cases: [(String, String)] = [
                    ("/secret.json", "client_secret"), ("/other-id.json", "exactly its own URL"),
                    ("/missing.json", "returned HTTP 404"),
                ]
                for (path, reason) in cases {
                    let response = try await client.execute(uri: authorizeQuery(base + path), method: .get)
                    #expect(response.status == .badRequest, "\(path)")
                    #expect(response.headers[.location] == nil)
                    #expect(response.headers[.contentType] == "text/html; charset=utf-8")
                    let html = String(buffer: response.body)
                    #expect(html.contains("Application details not accepted"), "\(path)")
                    #expect(html.contains("request id"), "\(path)")
                    #expect(!html.contains(reason), "\(path)")
                }
            }
        }
    }

    @Test func withoutDevelopmentSettingsLoopbackDocumentsAreRefused() async throws {
        try await App().run { client in
            let http = try await client.execute(uri: authorizeQuery("http://127.0.0.1:4000/client.json"), method: .get)
            #expect(http.status == .badRequest)
            let loopback = try await client.execute(uri: authorizeQuery("https://127.0.0.1/client.json"), method: .get)
            #expect(loopback.status == .badRequest)
            #expect(!String(buffer: loopback.body).contains("private"))
            #expect(loopback.headers[.location] == nil)
        }
    }

    @Test func turnedOffClientIDURLsAreUnknownClients() async throws {
        try await App(environment: ["CLIENT_ID_METADATA_DOCUMENTS": "false"]).run { client in
            let response = try await client.execute(
                uri: authorizeQuery("https://app.example/client.json"), method: .get)
            #expect(response.status == .badRequest)
            #expect(String(buffer: response.body).contains("does not accept client_id URLs"))
            let token = try await client.postForm(
                "/token",
                [
                    ("grant_type", "authorization_code"), ("code", "x"),
                    ("client_id", "https://app.example/client.json"),
                ])
            #expect(token.status == .unauthorized)
            #expect(try jsonObject(token)["error"] == "invalid_client")
        }
    }

    @Test func aTokenRequestFromANeverAuthorizedDocumentClientIsAnUnknownClient() async throws {
        let server = MetadataDocumentServer(["/client.json": MetadataDocumentServer.document()])
        try await server.run { base in
            try await App(environment: Self.development).run { client in
                let token = try await client.postForm(
                    "/token",
                    [("grant_type", "authorization_code"), ("code", "x"), ("client_id", base + "/client.json")])
                #expect(token.status == .unauthorized)
                #expect(try jsonObject(token)["error"] == "invalid_client")
                #expect(server.fetches("/client.json") == 0)
            }
        }
    }

    @Test func documentsAreReusedAsTheirCacheHeadersSayAndFailuresBriefly() async throws {
        let server = MetadataDocumentServer([
            "/cached.json": MetadataDocumentServer.document(cacheControl: "max-age=60"),
            "/uncached.json": MetadataDocumentServer.document(cacheControl: "no-store"),
        ])
        try await server.run { base in
            let app = try await App(environment: Self.development)
            try await app.run { client in
                func authorize(_ path: String) async -> HTTPResponse.Status {
                    (try? await client.execute(uri: authorizeQuery(base + path), method: .get).status)
                        ?? .internalServerError
                }
                #expect(await authorize("/cached.json") == .ok)
                #expect(await authorize("/cached.json") == .ok)
                #expect(server.fetches("/cached.json") == 1)
                app.clock.advance(by: 61)
                #expect(await authorize("/cached.json") == .ok)
                #expect(server.fetches("/cached.json") == 2)

                #expect(await authorize("/uncached.json") == .ok)
                #expect(await authorize("/uncached.json") == .ok)
                #expect(server.fetches("/uncached.json") == 2)

                // A broken document is fetched again once the failure is forgotten (10 s), so a fix shows quickly.
                #expect(await authorize("/later.json") == .badRequest)
                #expect(await authorize("/later.json") == .badRequest)
                #expect(server.fetches("/later.json") == 1)
                server.replace("/later.json", with: MetadataDocumentServer.document())
                app.clock.advance(by: 11)
                #expect(await authorize("/later.json") == .ok)
                #expect(server.fetches("/later.json") == 2)
            }
        }
    }

    @Test func changedRedirectURIsReplaceTheStoredOnesAndKeepTheGrants() async throws {
        let server = MetadataDocumentServer([
            "/client.json": MetadataDocumentServer.document(cacheControl: "no-store")
        ])
        try await server.run { base in
            let clientID = base + "/client.json"
            let app = try await App(environment: Self.development)
            try await app.run { client in
                let pkce = PKCEPair()
                let redirect = try await client.authorize(app: app, clientID: clientID, pkce: pkce)
                let token = try await client.postForm(
                    "/token",
                    [
                        ("grant_type", "authorization_code"), ("code", try #require(redirect["code"])),
                        ("client_id", clientID), ("redirect_uri", App.redirectURI), ("code_verifier", pkce.verifier),
                    ])
                let refresh = try #require(try jsonObject(token)["refresh_token"]?.stringValue)
                let first = try #require(try await app.storage.clients.client(id: clientID))
                server.replace(
                    "/client.json",
                    with: MetadataDocumentServer.document(
                        redirectURIs: ["http://localhost:4040/cb"], name: "Renamed", cacheControl: "no-store"))
                app.clock.advance(by: 5)
                let old = try await client.execute(uri: authorizeQuery(clientID), method: .get)
                #expect(old.status == .badRequest)
                let stored = try #require(try await app.storage.clients.client(id: clientID))
                #expect(stored.name == "Renamed")
                #expect(stored.redirectURIs == ["http://localhost:4040/cb"])
                #expect(stored.createdAt == first.createdAt)
                // The client's grant survived the update: its refresh token still works.
                let refreshed = try await client.postForm(
                    "/token", [("grant_type", "refresh_token"), ("refresh_token", refresh), ("client_id", clientID)])
                #expect(refreshed.status == .ok)
            }
        }
    }

    @Test func concurrentRequestsForOneDocumentFetchItOnce() async throws {
        let server = MetadataDocumentServer([
            "/client.json": {
                var document = MetadataDocumentServer.document()
                document.delay = .milliseconds(200)
                return document
            }()
        ])
        try await server.run { base in
            try await App(environment: Self.development).run { client in
                try await withThrowingTaskGroup(of: HTTPResponse.Status.self) { group in
                    for _ in 0..<10 {
                        group.addTask {
                            try await client.execute(uri: authorizeQuery(base + "/client.json"), method: .get).status
                        }
                    }
                    for try await status in group { #expect(status == .ok) }
                }
                #expect(server.fetches("/client.json") == 1)
            }
        }
    }
}

/// Serves a valid document for any URL, counting fetches.
final class AnyDocumentFetcher: ClientMetadataFetching, @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    var fetches: Int { lock.withLock { count } }

    func fetch(_ url: ClientMetadataDocumentURL) async throws(ClientMetadataDocumentError) -> FetchedClientMetadata {
        lock.withLock { count += 1 }
        let json = #"{"client_id":"\#(url.text)","client_name":"C","redirect_uris":["https://c.example/cb"]}"#
        return FetchedClientMetadata(body: Array(json.utf8), lifetime: 3600)
    }
}

@Suite("Client ID Metadata Documents: the cache")
struct ClientMetadataCacheTests {
    @Test func theCacheIsBoundedAndKeepsTheNewest() async throws {
        let fetcher = AnyDocumentFetcher()
        let clock = ManualClock()
        let documents = ClientMetadataDocuments(
            fetcher: fetcher, store: GatewayStorage.sqlite(try SQLiteSchema.inMemory()).clients,
            scopes: GatewayScopes([("read:todos", nil)]), clock: clock, allowLoopbackHTTP: false,
            logger: Logger(label: "test"))
        let total = ClientMetadataDocuments.capacity + 20
        for index in 0..<total {
            clock.advance(by: 1)
            _ = try await documents.client(for: "https://c\(index).example/client.json")
        }
        #expect(await documents.cachedCount == ClientMetadataDocuments.capacity)
        // The newest is still cached; the oldest was evicted and is fetched again.
        _ = try await documents.client(for: "https://c\(total - 1).example/client.json")
        #expect(fetcher.fetches == total)
        _ = try await documents.client(for: "https://c0.example/client.json")
        #expect(fetcher.fetches == total + 1)
    }
}
