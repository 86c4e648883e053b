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

/// The tokens the tools present to TodosAPI: minted by the gateway in every mode that has no provider token for the
/// API (never the MCP client's own credential), verifiable with the gateway's published keys, narrowed to the scope of
/// the call.
@Suite("Downstream tokens")
struct DownstreamTokenTests {
    typealias App = GatewayTestApp

    /// The token TodosAPI received, verified against the gateway's `/.well-known/jwks.json` as TodosAPI would.
    func verifiedDownstreamToken(
        _ authorization: String?, client: any TestClientProtocol, app: App, audience: String = "urn:todos-api"
    ) async throws -> VerifiedToken {
        let token = try #require(authorization?.split(separator: " ").last.map(String.init))
        let jwks = try await client.execute(uri: "/.well-known/jwks.json", method: .get)
        #expect(jwks.status == .ok)
        #expect(jwks.headers[.contentType] == "application/jwk-set+json")
        let keys = try await KeySet.parse(jwks: Array(buffer: jwks.body))
        let verifier = JWTVerifier(
            configuration: .init(
                issuer: App.publicURL, audiences: [audience], acceptedTypes: ["at+jwt"]), keys: keys,
            clock: app.clock)
        let verified = try await verifier.verify(token)
        #expect(verified.header["typ"] == "at+jwt")
        return verified
    }

    @Test func externalModeMintsATokenForTheCallNeverForwardingTheClientsToken() async throws {
        let api = FakeTodosAPI()
        try await api.run { apiURL in
            let app = try await App(
                environment: AuthModeTests.external.merging(["API_BASE_URL": apiURL]) { _, new in new })
            try await app.run { client in
                let token = try app.provider.sign(AuthModeTests().claims(app))
                let session = try await client.initialize(token)
                let reply = try await client.callTool(token, session: session, "list-todos")
                #expect(reply.result?["isError"] == false)
                let seen = try #require(api.seen.first?.authorization)
                #expect(seen != "Bearer \(token)")
                let minted = try await verifiedDownstreamToken(seen, client: client, app: app)
                #expect(minted.subject == "auth0|carol")
                // Only the scope the endpoint needs: offline_access, granted too, is not passed on.
                #expect(minted.scopes == ["read:todos"])
                #expect(minted.string("client_id") == "claude")
                #expect(minted.claims["act"] == ["sub": "claude"])
                #expect(minted.string("email") == "carol@example.com")
                #expect(minted.expiresAt.timeIntervalSince(try #require(minted.issuedAt)) == 300)
            }
        }
    }

    @Test func accessModeMintsATokenWithTheConfiguredScopes() async throws {
        let api = FakeTodosAPI()
        try await api.run { apiURL in
            let app = try await App(
                environment: AuthModeTests.access.merging([
                    "API_BASE_URL": apiURL, "DOWNSTREAM_AUDIENCE": "api://todos",
                ]) {
                    _, new in new
                })
            let jwt = try app.provider.sign(AuthModeTests().assertion(app))
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
                #expect(api.seen.first?.accessToken == nil)
                let minted = try await verifiedDownstreamToken(
                    api.seen.first?.authorization, client: client, app: app, audience: "api://todos")
                #expect(minted.subject == "7335d417-61da-459d-899c-0a01c76a2f94")
                #expect(minted.scopes == ["read:todos"])
                #expect(minted.claims["act"] == nil)
                #expect(minted.string("client_id") == App.publicURL)
            }
        }
    }

    @Test func gatewayModeMintsWhenTheProviderGrantsNoAPIScopes() async throws {
        let api = FakeTodosAPI()
        try await api.run { apiURL in
            let app = try await App(environment: [
                "API_BASE_URL": apiURL, "GRANTED_SCOPES": "read:todos write:todos", "AUTH0_AUDIENCE": "",
                "OIDC_ISSUER": FakeProvider.issuer, "AUTH0_DOMAIN": "",
            ])
            #expect(app.configuration.downstream.kind == .mint)
            try await app.run { client in
                let tokens = try await client.signIn(app: app, scope: "read:todos")
                let session = try await client.initialize(tokens.accessToken)
                let reply = try await client.callTool(tokens.accessToken, session: session, "list-todos")
                #expect(reply.result?["isError"] == false)
                let minted = try await verifiedDownstreamToken(api.seen.first?.authorization, client: client, app: app)
                #expect(minted.subject == "auth0|alice")
                #expect(minted.string("client_id") == tokens.clientID)
                #expect(minted.scopes == ["read:todos"])
                // The same call again within half the token's lifetime reuses it; later, a new one is signed.
                _ = try await client.callTool(tokens.accessToken, session: session, "list-todos")
                app.clock.advance(by: 151)
                _ = try await client.callTool(tokens.accessToken, session: session, "list-todos")
                let seen = api.seen.map(\.authorization)
                #expect(seen.count == 3 && seen[0] == seen[1] && seen[1] != seen[2])
            }
        }
    }

    @Test func gatewayModeWithAnAPIAudienceUsesTheProvidersTokenAndStillPublishesKeys() async throws {
        let app = try await App()
        #expect(app.configuration.downstream.kind == .upstream)
        try await app.run { client in
            // Grants no provider signed in (identity assertions) get minted tokens whatever the setting.
            let jwks = try await client.execute(uri: "/.well-known/jwks.json", method: .get)
            #expect(jwks.status == .ok)
            let metadata = try jsonObject(
                try await client.execute(uri: "/.well-known/oauth-authorization-server", method: .get))
            #expect(metadata["jwks_uri"] == "http://localhost:8788/.well-known/jwks.json")
        }
    }

    @Test(arguments: [
        (["AUTH_MODE": "external", "DOWNSTREAM_TOKENS": "upstream"], "DOWNSTREAM_TOKENS"),
        (["AUTH_MODE": "access", "DOWNSTREAM_TOKENS": "exchange"], "DOWNSTREAM_TOKENS"),
        (["DOWNSTREAM_TOKENS": "passthrough"], "DOWNSTREAM_TOKENS"),
        (["DOWNSTREAM_TOKEN_TTL": "1h"], "DOWNSTREAM_TOKEN_TTL"),
        (["DOWNSTREAM_AUDIENCE": "a,b"], "DOWNSTREAM_AUDIENCE"),
        (["SIGNING_KEY_ROTATION": "10s"], "SIGNING_KEY_ROTATION"),
    ])
    func misconfigurationNamesTheSetting(environment: [String: String], variable: String) async throws {
        var values = AuthModeTests.external.merging(AuthModeTests.access) { first, _ in first }
        values.merge([
            "AUTH_MODE": "gateway", "AUTH0_DOMAIN": "idp.example.test", "AUTH0_CLIENT_ID": "c",
            "AUTH0_CLIENT_SECRET": "s", "COOKIE_ENCRYPTION_KEY": String(repeating: "c", count: 40),
            "GATEWAY_ENCRYPTION_KEY": String(repeating: "e", count: 40), "OIDC_ISSUER": "",
        ]) { _, new in new }
        values.merge(environment) { _, new in new }
        let error = #expect(throws: ConfigurationError.self) {
            _ = try GatewayConfiguration.load(from: Settings(environment: values))
        }
        #expect(error?.variable == variable)
    }
}
