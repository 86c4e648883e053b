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

/// Identities with control characters (a newline that forges a log line, an escape sequence that rewrites an
/// operator's terminal, a bidi override that reorders what it shows) do not get in: tokens whose identifying claims
/// (`sub`, `client_id`, `azp`) carry them are refused; display claims (name, email) with them are not used, from
/// tokens, userinfo or GitHub alike (a directory may put a right-to-left mark in a display name: the user still signs
/// in); and the admin output escapes what the database holds.
@Suite("Gateway: control characters in identities")
struct ControlCharacterTests {
    typealias App = GatewayTestApp

    /// What an attacker puts in a claim: a newline followed by a forged log line, an escape sequence, a C1 control,
    /// the line and paragraph separators, a bidi override.
    static let hostileValues = [
        "okta|dana\n2026-12-01T10:00:00.000Z notice McpGateway.audit: audit.event=sign_in user.id=admin",
        "okta|dana\r\nforged", "okta|\u{1B}[2J\u{1B}[Hdana", "okta|dana\u{85}forged", "okta|dana\u{2028}forged",
        "okta|dana\u{2029}forged", "okta|\u{202E}anad", "okta|dana\u{7F}", "okta|dana\u{0}", "okta|dana\u{9B}31m",
        "okta|dana\tforged",
    ]

    // MARK: identity assertions

    @Test(arguments: hostileValues)
    func anIdentityAssertionWhoseSubjectHasControlCharactersIsInvalidGrant(_ subject: String) async throws {
        let app = try await App(environment: MachineClientTests.issuerEnvironment)
        let machine = MachineClientTests()
        let secret = try await machine.addClient(app, id: "agent", grant: GrantType.jwtBearer)
        try await app.run { client in
            let response = try await client.postForm(
                "/token", machine.jwtBearer(try machine.identityAssertion(app, changes: ["sub": .string(subject)])),
                headers: machine.basic("agent", secret))
            try expectOAuthError(response, .badRequest, "invalid_grant")
            let description = try jsonObject(response)["error_description"]?.stringValue ?? ""
            #expect(description.contains("sub"), "\(description)")
            #expect(!description.contains("dana"), "the value is not echoed: \(description)")
            // Nothing was granted: no grant names the user, so no audit line, admin listing or token can.
            #expect(try await app.storage.grants.activeGrants(.all, now: app.clock.now).isEmpty)
        }
    }

    @Test(arguments: [
        ("name", "Dana\n2026-12-01T10:00:00.000Z notice forged"), ("email", "dana@example.com\u{1B}]8;;https://evil"),
        ("preferred_username", "dana\u{202E}"), ("name", "Dana\u{2028}"),
    ])
    func anIdentityAssertionWhoseProfileHasControlCharactersGrantsWithoutThem(_ claim: String, _ value: String)
        async throws
    {
        let app = try await App(environment: MachineClientTests.issuerEnvironment)
        let machine = MachineClientTests()
        let secret = try await machine.addClient(app, id: "agent", grant: GrantType.jwtBearer)
        try await app.run { client in
            let response = try await client.postForm(
                "/token", machine.jwtBearer(try machine.identityAssertion(app, changes: [claim: .string(value)])),
                headers: machine.basic("agent", secret))
            #expect(response.status == .ok, "\(claim)")
            let user = try #require(try await app.storage.grants.activeGrants(.all, now: app.clock.now).first?.user)
            for stored in [user.name, user.email].compactMap({ $0 }) {
                #expect(ClaimText.isSafe(stored) && stored != value, "\(claim): \(stored)")
            }
        }
    }

    @Test func anIdentityAssertionWithNonASCIINamesIsAccepted() async throws {
        let app = try await App(environment: MachineClientTests.issuerEnvironment)
        let machine = MachineClientTests()
        let secret = try await machine.addClient(app, id: "agent", grant: GrantType.jwtBearer)
        try await app.run { client in
            let response = try await client.postForm(
                "/token",
                machine.jwtBearer(
                    try machine.identityAssertion(
                        app, changes: ["sub": "okta|renée", "name": "Renée 日本 Müller", "email": "renée@例え.jp"])),
                headers: machine.basic("agent", secret))
            #expect(response.status == .ok)
            let grants = try await app.storage.grants.activeGrants(.all, now: app.clock.now)
            #expect(grants.first?.user?.subject == "okta|renée")
            #expect(grants.first?.user?.name == "Renée 日本 Müller")
        }
    }

    // MARK: ID tokens at the callback

    /// Runs a sign-in up to the callback with an ID token changed by `changes`; returns the callback's answer.
    func callback(_ app: App, _ client: any TestClientProtocol, subject: String = "auth0|alice") async throws
        -> TestResponse
    {
        let registered = try await client.registerClient()
        let jar = CookieJar()
        let page = try await client.execute(
            uri: "/authorize?"
                + formBody([
                    ("response_type", "code"), ("client_id", registered.id), ("redirect_uri", App.redirectURI),
                    ("code_challenge", PKCEPair().challenge), ("code_challenge_method", "S256"), ("state", "cs"),
                ]), method: .get)
        jar.absorb(page)
        let html = String(buffer: page.body)
        let approval = try await client.postForm(
            "/authorize",
            [
                ("request_id", try #require(hiddenField("request_id", html))),
                ("csrf_token", try #require(hiddenField("csrf_token", html))), ("decision", "approve"),
            ], headers: jar.header)
        jar.absorb(approval)
        let upstream = queryItems(try #require(approval.headers[.location]))
        let code = "up-\(UUID().uuidString)"
        app.provider.issue(code: code, nonce: try #require(upstream["nonce"]), subject: subject)
        return try await client.execute(
            uri: "/callback?" + formBody([("code", code), ("state", try #require(upstream["state"]))]), method: .get,
            headers: jar.header)
    }

    func expectSignedInWithoutTheValue(_ response: TestResponse, _ app: App, _ what: String) async throws {
        #expect(response.status == .found, "\(what): \(response.status)")
        let grant = try #require(try await app.storage.grants.activeGrants(.all, now: app.clock.now).first)
        for stored in [grant.user?.name, grant.user?.email].compactMap({ $0 }) {
            #expect(ClaimText.isSafe(stored), "\(what): \(stored)")
        }
    }

    func expectSignInRefused(_ response: TestResponse, _ app: App, _ what: String) async throws {
        #expect(response.status == .badGateway, "\(what): \(response.status)")
        #expect(response.headers[.location] == nil, "\(what)")
        let html = String(buffer: response.body)
        #expect(!html.contains("\u{1B}") && !html.contains("forged"), "\(what): the value is not shown")
        #expect(try await app.storage.grants.activeGrants(.all, now: app.clock.now).isEmpty, "\(what)")
    }

    @Test(arguments: [
        ("name", JSONValue.string("Alice\u{1B}[2J\u{1B}[31m forged")), ("email", "alice@example.com\nforged"),
        ("nickname", "al\u{202E}ice forged"), ("given_name", "Al\u{85}forged"), ("family_name", "Ex\u{2029}forged"),
        ("preferred_username", "alice\u{7}forged"),
    ])
    func anIDTokenWithControlCharactersInTheProfileSignsInWithoutThem(_ claim: String, _ value: JSONValue)
        async throws
    {
        let app = try await App()
        app.provider.update { $0.idTokenChanges = [claim: value] }
        try await app.run { client in
            try await expectSignedInWithoutTheValue(try await callback(app, client), app, claim)
        }
    }

    @Test func aRightToLeftMarkInADisplayNameDoesNotLockTheUserOut() async throws {
        let app = try await App()
        app.provider.update { $0.idTokenChanges = ["name": "\u{200F}דנה", "email": "dana@example.com"] }
        try await app.run { client in
            let response = try await callback(app, client)
            #expect(response.status == .found)
            let user = try #require(try await app.storage.grants.activeGrants(.all, now: app.clock.now).first?.user)
            #expect(user.email == "dana@example.com")
            #expect(user.name.map(ClaimText.isSafe) ?? true)
        }
    }

    @Test func anIDTokenWhoseSubjectHasANewlineFailsTheSignIn() async throws {
        let app = try await App()
        try await app.run { client in
            try await expectSignInRefused(
                try await callback(app, client, subject: "auth0|alice\nforged audit.event=grant_revoked"), app, "sub")
        }
    }

    @Test func anIDTokenWithNonASCIINamesSignsIn() async throws {
        let app = try await App()
        app.provider.update { $0.idTokenChanges = ["name": "Chloé 日本", "email": "chloé@例え.jp"] }
        try await app.run { client in
            let response = try await callback(app, client, subject: "auth0|chloé")
            #expect(response.status == .found)
            let grant = try #require(try await app.storage.grants.activeGrants(.all, now: app.clock.now).first)
            #expect(grant.user == UserProfile(subject: "auth0|chloé", name: "Chloé 日本", email: "chloé@例え.jp"))
        }
    }

    // MARK: external and access modes

    @Test func anExternalTokenWithControlCharactersInWhatIdentifiesIsRefused() async throws {
        let app = try await App(environment: AuthModeTests.external)
        try await app.run { client in
            for (claim, value) in [
                ("sub", "auth0|carol\nforged"), ("azp", "claude\u{202E}"), ("client_id", "claude\r"),
            ] {
                let token = try app.provider.sign(AuthModeTests().claims(app, [claim: .string(value)]))
                let reply = try await client.mcp(token, AuthModeTests.ping)
                #expect(reply.status == .unauthorized, "\(claim)")
                let challenge = reply.response.headers[.wwwAuthenticate] ?? ""
                #expect(challenge.contains(#"error="invalid_token""#), "\(claim)")
                #expect(ClaimText.isSafe(challenge), "\(claim): \(challenge)")
            }
        }
    }

    @Test func anAccessAssertionWithControlCharactersIsRefused() async throws {
        let app = try await App(environment: AuthModeTests.access)
        try await app.run { client in
            for (claim, value) in [("sub", "7335d417\nforged")] {
                let jwt = try app.provider.sign(AuthModeTests().assertion(app, [claim: .string(value)]))
                let reply = try await client.mcp(
                    nil, AuthModeTests.ping, extra: [HTTPField.Name("Cf-Access-Jwt-Assertion")!: jwt])
                #expect(reply.status == .forbidden, "\(claim)")
            }
        }
    }

    // MARK: userinfo and GitHub

    /// A provider whose userinfo and GitHub API answers a test writes.
    final class ScriptedProvider: UpstreamHTTP, DocumentFetching, @unchecked Sendable {
        let answers: [String: String]
        init(_ answers: [String: String]) { self.answers = answers }

        func post(form: [(String, String)], to url: String, headers: [(String, String)]) async throws
            -> (status: Int, body: [UInt8])
        { (404, []) }

        func get(_ url: String, headers: [(String, String)]) async throws -> (status: Int, body: [UInt8]) {
            guard let body = answers.first(where: { url.hasSuffix($0.key) })?.value else { return (404, []) }
            return (200, Array(body.utf8))
        }

        func fetch(_ url: String) async throws -> FetchedDocument { throw DocumentFetchError("no \(url)") }
    }

    func oidcProvider(userinfo: String) -> UpstreamProvider {
        let scripted = ScriptedProvider(["/userinfo": userinfo])
        return UpstreamProvider(
            configuration: UpstreamConfiguration(
                issuer: "https://idp.test/", clientID: "c", clientSecret: "s",
                endpoints: .explicit(
                    authorization: "https://idp.test/authorize", token: "https://idp.test/token",
                    jwks: "https://idp.test/jwks", userinfo: "https://idp.test/userinfo"),
                audience: nil, scope: ["openid"], grantedScopes: nil, displayName: "IdP"),
            callbackURL: "http://localhost:8788/callback", http: scripted, fetcher: scripted,
            logger: Logger(label: "test"))
    }

    func json(_ object: [String: JSONValue]) throws -> String {
        String(decoding: try JSONEncoder().encode(object), as: UTF8.self)
    }

    @Test(arguments: [
        "Mallory\n2026-12-01T10:00:00.000Z notice forged", "Mallory\u{1B}[2J", "Mal\u{202E}lory", "Mallory\u{85}",
        "Mallory\u{2028}",
    ])
    func userinfoValuesWithControlCharactersAreNotUsed(_ hostile: String) async throws {
        let provider = oidcProvider(
            userinfo: try json(["sub": "auth0|mallory", "name": .string(hostile), "email": .string(hostile + "@x.example")]))
        let completed = await provider.completeProfile(UserProfile(subject: "auth0|mallory"), accessToken: "at")
        #expect(completed.name == nil, "\(String(reflecting: completed.name))")
        #expect(completed.email == nil, "\(String(reflecting: completed.email))")
        #expect(completed.subject == "auth0|mallory")
    }

    @Test func cleanUserinfoValuesAreUsedNonASCIIIncluded() async throws {
        let provider = oidcProvider(
            userinfo: try json(["sub": "auth0|zoe", "name": "Zoë 日本", "email": "zoë@例え.jp"]))
        let completed = await provider.completeProfile(UserProfile(subject: "auth0|zoe"), accessToken: "at")
        #expect(completed.name == "Zoë 日本" && completed.email == "zoë@例え.jp")
    }

    @Test func aHostileNicknameDoesNotReplaceAMissingNameWithAForgedLine() async throws {
        // The name is missing and the nickname hostile: no name rather than the nickname.
        let provider = oidcProvider(
            userinfo: try json(["sub": "auth0|m", "nickname": "m\nforged", "email": "m@example.com"]))
        let completed = await provider.completeProfile(UserProfile(subject: "auth0|m"), accessToken: "at")
        #expect(completed.name == nil)
        #expect(completed.email == "m@example.com")
    }

    func github(_ user: String, emails: String = "[]") throws -> UpstreamProvider {
        let configuration = try #require(
            try GitHubProvider.load(
                from: Settings(
                    environment: GitHubProviderTests.environment.merging(["GITHUB_URL": "https://github.test"]) {
                        $1
                    })))
        let scripted = ScriptedProvider(["/user": user, "/user/emails": emails])
        return UpstreamProvider(
            configuration: configuration, callbackURL: "http://localhost:8788/callback", http: scripted,
            fetcher: scripted, logger: Logger(label: "test"))
    }

    @Test func gitHubNamesAndEmailsWithControlCharactersAreDropped() async throws {
        // A hostile name falls back to the login; a hostile public email is not used.
        let user = try await github(
            #"{"id":1,"login":"octocat","name":"Octo\u001b[2Jcat\nforged","email":"octo\u202e@github.example"}"#
        ).githubUser(accessToken: "gho")
        #expect(user.subject == "github|github.test|1")
        #expect(user.name == "octocat")
        #expect(user.email == nil)
        // The verified primary email from /user/emails, when it is hostile, is not used either.
        let viaEmails = try await github(
            #"{"id":2,"login":"octocat","name":null,"email":null}"#,
            emails: #"[{"email":"octo@github.example\r\nforged","primary":true,"verified":true}]"#
        ).githubUser(accessToken: "gho")
        #expect(viaEmails.email == nil)
        #expect(viaEmails.name == "octocat")
        // A hostile login as well: no name at all.
        let nameless = try await github(#"{"id":3,"login":"octo\u0085cat","name":null,"email":null}"#)
            .githubUser(accessToken: "gho")
        #expect(nameless.name == nil)
        // Clean non-ASCII names stay.
        let clean = try await github(#"{"id":4,"login":"octocat","name":"Océane 日本","email":"o@github.example"}"#)
            .githubUser(accessToken: "gho")
        #expect(clean.name == "Océane 日本" && clean.email == "o@github.example")
    }

    // MARK: admin output

    /// Whether `text` holds a character a terminal acts on (besides the newlines that end lines).
    func hasUnsafeCharacters(_ text: String) -> Bool {
        text.unicodeScalars.contains { $0 != "\n" && ClaimText.isUnsafe($0) }
    }

    @Test func sayWritesOneInertLine() throws {
        let output = try StandardOutput.capture {
            say("Name:          Eve\n2026-12-01 Deleted client admin.\u{1B}[2J\u{1B}[31m\u{202E}\u{85}\u{2028}\r")
        }
        let lines = output.split(separator: "\n", omittingEmptySubsequences: false).filter { !$0.isEmpty }
        #expect(lines.count == 1, "\(output.debugDescription)")
        #expect(!hasUnsafeCharacters(output), "\(output.debugDescription)")
        #expect(output.contains(#"Eve\n2026-12-01 Deleted client admin.\u{1B}[2J"#))
        #expect(output.contains(#"\u{202E}\u{85}\u{2028}\r"#))
        // Clean text, non-ASCII included, is written as it is.
        let clean = try StandardOutput.capture { say("Name:          Zoë 日本") }
        #expect(clean == "Name:          Zoë 日本\n")
    }

    @Test func tablesEscapeEveryCell() throws {
        let output = try StandardOutput.capture {
            printTable(
                ["CLIENT ID", "NAME", "CREATED"],
                [
                    ["c1", "Evil\nc2  Forged Client  2026-01-01", "2026-12-01"],
                    ["c3\u{1B}[2K", "Right\u{202E}to-left", "2026-12-02"],
                    ["c4", "Zoë 日本", "2026-12-03"],
                ])
        }
        let lines = output.split(separator: "\n")
        #expect(lines.count == 4, "\(output.debugDescription)")
        #expect(!hasUnsafeCharacters(output), "\(output.debugDescription)")
        #expect(lines.count == 4 && lines[1].contains(#"Evil\nc2"#) && lines[2].hasPrefix(#"c3\u{1B}[2K"#))
        #expect(output.contains("Zoë 日本"))
    }

    @Test func grantListingsEscapeTheSubjectAndEmail() throws {
        let now = Date(timeIntervalSince1970: 1_750_000_000)
        let grant = Grant(
            id: "g1", clientID: "c1\u{1B}]0;title\u{7}",
            user: UserProfile(subject: "auth0|eve\n g2  auth0|admin", email: "e@x\u{202E}"), scope: ["read:todos"],
            resource: "r", upstream: nil, createdAt: now, expiresAt: now.addingTimeInterval(60))
        let output = try StandardOutput.capture { printGrants([grant]) }
        #expect(output.split(separator: "\n").count == 2, "\(output.debugDescription)")
        #expect(!hasUnsafeCharacters(output), "\(output.debugDescription)")
    }

    @Test func jsonListingsCarryNoCharacterATerminalActsOn() throws {
        // `--json` output is read on a terminal too: JSON's escapes must cover C1 controls, separators and bidi
        // overrides, not only what JSON requires (U+0000 to U+001F).
        let client = RegisteredClient(
            id: "c1", secretDigest: nil, authMethod: .none, name: "Evil\u{9B}2J\u{85}\u{202E}\u{2028}\u{7F}\u{1B}[2J",
            uri: nil, logoURI: nil, redirectURIs: ["http://localhost/cb"], grantTypes: ["authorization_code"],
            createdAt: Date(timeIntervalSince1970: 1_750_000_000))
        let output = try StandardOutput.capture { try printJSON([ClientView(client)]) }
        #expect(output.contains("\"c1\""), "\(output.debugDescription)")
        #expect(!hasUnsafeCharacters(output), "\(output.debugDescription)")
        // And it is still JSON that says what the database holds.
        let decoded = try JSONDecoder().decode([[String: JSONValue]].self, from: Data(output.utf8))
        #expect(decoded.first?["name"]?.stringValue == client.name)
    }
}

/// What a synchronous body writes to the process's standard output (`print`), captured through a pipe. One capture at
/// a time; whatever else the process prints meanwhile lands in the capture too, so tests look for their own text.
enum StandardOutput {
    private static let lock = NSLock()

    static func capture(_ body: () throws -> Void) throws -> String {
        lock.lock()
        defer { lock.unlock() }
        fflush(nil)
        let pipe = Pipe()
        let saved = dup(STDOUT_FILENO)
        guard saved >= 0, dup2(pipe.fileHandleForWriting.fileDescriptor, STDOUT_FILENO) >= 0 else {
            throw CaptureFailed()
        }
        var thrown: (any Error)?
        do { try body() } catch { thrown = error }
        fflush(nil)
        dup2(saved, STDOUT_FILENO)
        close(saved)
        try pipe.fileHandleForWriting.close()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        if let thrown { throw thrown }
        return String(decoding: data, as: UTF8.self)
    }

    struct CaptureFailed: Error {}
}
