import Foundation
import HTTPTypes
import HummingbirdTesting
import JSON
import JWTAuth
import NIOCore
import ServiceSupport
import Testing

@testable import McpGateway

/// The tokens the gateway mints for TodosAPI name the issuer their subject belongs to (`sub_id`, RFC 9493 `iss_sub`):
/// the issuer of the token the user came with, exactly as that token spells it, so that TodosAPI files the user's
/// todos under the same (issuer, subject) whichever way a call reaches it.
@Suite("Gateway: sub_id in downstream tokens")
struct SubjectIdentifierTests {
    typealias App = GatewayTestApp

    func expectSubjectIdentifier(
        _ token: VerifiedToken, issuer: String, subject: String, sourceLocation: SourceLocation = #_sourceLocation
    ) {
        #expect(token.subject == subject, sourceLocation: sourceLocation)
        #expect(
            token.claims["sub_id"]
                == .object(["format": "iss_sub", "iss": .string(issuer), "sub": .string(subject)]),
            "\(String(describing: token.claims["sub_id"]))", sourceLocation: sourceLocation)
        // Only the gateway's own issuer names another issuer's subject: the token's iss stays the gateway.
        #expect(token.issuer == App.publicURL, sourceLocation: sourceLocation)
    }

    @Test func gatewayModeNamesTheProviderUsersSignInWith() async throws {
        let api = FakeTodosAPI()
        try await api.run { apiURL in
            let app = try await App(environment: [
                "API_BASE_URL": apiURL, "GRANTED_SCOPES": "read:todos write:todos", "AUTH0_AUDIENCE": "",
                "OIDC_ISSUER": FakeProvider.issuer, "AUTH0_DOMAIN": "",
            ])
            try await app.run { client in
                let tokens = try await client.signIn(app: app, scope: "read:todos", subject: "auth0|alice")
                let session = try await client.initialize(tokens.accessToken)
                #expect(
                    try await client.callTool(tokens.accessToken, session: session, "list-todos").result?["isError"]
                        == false)
                let minted = try await DownstreamTokenTests().verifiedDownstreamToken(
                    api.seen.first?.authorization, client: client, app: app)
                // The ID token's iss, as the provider spells it (trailing slash included).
                expectSubjectIdentifier(minted, issuer: FakeProvider.issuer, subject: "auth0|alice")
            }
        }
    }

    @Test func gatewayModeWithAnAuth0DomainNamesTheIssuerTheIDTokensCarry() async throws {
        // AUTH0_DOMAIN=idp.example.test: the issuer is https://idp.example.test/, what the ID tokens' iss says. The
        // users of identity assertions by the sign-in provider are its users too.
        let api = FakeTodosAPI()
        try await api.run { apiURL in
            let app = try await App(
                environment: MachineClientTests.issuerEnvironment.merging(["API_BASE_URL": apiURL]) { $1 })
            let machine = MachineClientTests()
            let secret = try await machine.addClient(app, id: "agent", grant: GrantType.jwtBearer)
            try await app.run { client in
                let response = try await client.postForm(
                    "/token", machine.jwtBearer(try machine.identityAssertion(app)),
                    headers: machine.basic("agent", secret))
                #expect(response.status == .ok)
                let token = try #require(try jsonObject(response)["access_token"]?.stringValue)
                let session = try await client.initialize(token)
                #expect(try await client.callTool(token, session: session, "list-todos").result?["isError"] == false)
                let minted = try await DownstreamTokenTests().verifiedDownstreamToken(
                    api.seen.first?.authorization, client: client, app: app)
                expectSubjectIdentifier(minted, issuer: FakeProvider.issuer, subject: "okta|dana")
            }
        }
    }

    @Test func externalModeNamesTheExternalAuthorizationServer() async throws {
        let api = FakeTodosAPI()
        try await api.run { apiURL in
            let app = try await App(
                environment: AuthModeTests.external.merging(["API_BASE_URL": apiURL]) { _, new in new })
            try await app.run { client in
                let claims = AuthModeTests().claims(app)
                let token = try app.provider.sign(claims)
                let session = try await client.initialize(token)
                #expect(try await client.callTool(token, session: session, "list-todos").result?["isError"] == false)
                let minted = try await DownstreamTokenTests().verifiedDownstreamToken(
                    api.seen.first?.authorization, client: client, app: app)
                expectSubjectIdentifier(minted, issuer: try #require(claims["iss"]?.stringValue), subject: "auth0|carol")
            }
        }
    }

    @Test func accessModeNamesTheAccessTeam() async throws {
        let api = FakeTodosAPI()
        try await api.run { apiURL in
            let app = try await App(environment: AuthModeTests.access.merging(["API_BASE_URL": apiURL]) { $1 })
            let assertion = AuthModeTests().assertion(app)
            let jwt = try app.provider.sign(assertion)
            try await app.run { client in
                let headers: HTTPFields = [HTTPField.Name("Cf-Access-Jwt-Assertion")!: jwt]
                let initialize = try await client.mcp(
                    nil,
                    #"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"playground","version":"1"}}}"#,
                    extra: headers)
                let session = try #require(initialize.response.headers[HTTPField.Name("Mcp-Session-Id")!])
                let reply = try await client.mcp(
                    nil, session: session,
                    #"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"list-todos","arguments":{}}}"#,
                    extra: headers)
                #expect(reply.result?["isError"] == false)
                let minted = try await DownstreamTokenTests().verifiedDownstreamToken(
                    api.seen.first?.authorization, client: client, app: app)
                // The assertion's iss, which is what TodosAPI files the user under when Access calls it directly.
                expectSubjectIdentifier(
                    minted, issuer: try #require(assertion["iss"]?.stringValue),
                    subject: "7335d417-61da-459d-899c-0a01c76a2f94")
                #expect(assertion["iss"]?.stringValue == FakeProvider.accessTeam)
            }
        }
    }

    @Test(arguments: [
        "https://acme.cloudflareaccess.com/", "acme.cloudflareaccess.com", " https://acme.cloudflareaccess.com//",
    ])
    func accessModeNamesTheTeamAsItsAssertionsDoHoweverTEAM_DOMAINIsWritten(_ team: String) async throws {
        // TEAM_DOMAIN is written by hand; the assertions' iss is always https://<team>.cloudflareaccess.com. The
        // minted sub_id must match the assertion, or TodosAPI files the same user under two owners.
        let configuration = try GatewayConfiguration.load(
            from: Settings(
                environment: AuthModeTests.access.merging([
                    "TEAM_DOMAIN": team, "PUBLIC_URL": App.publicURL, "API_BASE_URL": "http://127.0.0.1:9",
                    "GATEWAY_ENCRYPTION_KEY": String(repeating: "e", count: 40),
                ]) { $1 }))
        #expect(configuration.mode.subjectIssuer == FakeProvider.accessTeam)
    }
}
