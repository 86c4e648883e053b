import Foundation
import HTTPTypes
import HummingbirdTesting
import JSON
import JWTAuth
import NIOCore
import ServiceSupport
import Testing

@testable import McpGateway

@Suite("Gateway /register and metadata")
struct RegistrationTests {
    @Test func metadataDocumentsDescribeTheServer() async throws {
        let app = try await GatewayTestApp()
        try await app.run { client in
            let server = try jsonObject(
                try await client.execute(uri: "/.well-known/oauth-authorization-server", method: .get))
            #expect(server["issuer"] == "http://localhost:8788")
            #expect(server["registration_endpoint"] == "http://localhost:8788/register")
            #expect(server["code_challenge_methods_supported"] == ["S256"])
            #expect(server["grant_types_supported"] == ["authorization_code", "refresh_token", "client_credentials"])
            #expect(
                server["token_endpoint_auth_methods_supported"] == [
                    "none", "client_secret_basic", "client_secret_post", "private_key_jwt",
                ])
            #expect(server["jwks_uri"] == "http://localhost:8788/.well-known/jwks.json")
            #expect(server["authorization_response_iss_parameter_supported"] == true)
            #expect(server["scopes_supported"] == ["offline_access", "read:billing", "read:todos", "write:todos"])
            for path in ["/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/mcp"] {
                let resource = try jsonObject(try await client.execute(uri: path, method: .get))
                #expect(resource["resource"] == "http://localhost:8788/mcp")
                #expect(resource["authorization_servers"] == ["http://localhost:8788"])
                #expect(resource["bearer_methods_supported"] == ["header"])
                #expect(resource["resource_name"]?.stringValue?.isEmpty == false)
            }
        }
    }

    @Test func registersPublicAndConfidentialClients() async throws {
        let app = try await GatewayTestApp()
        try await app.run { client in
            let response = try await client.postJSON(
                "/register",
                #"{"client_name":"Inspector","redirect_uris":["http://localhost:6274/oauth/callback","http://localhost:6274/oauth/callback/debug"],"token_endpoint_auth_method":"none","grant_types":["authorization_code","refresh_token"],"unknown_field":1}"#
            )
            #expect(response.status == .created)
            #expect(response.headers[.cacheControl] == "no-store")
            let registered = try jsonObject(response)
            #expect(registered["client_secret"] == nil)
            #expect(registered["client_name"] == "Inspector")
            #expect(registered["redirect_uris"]?.arrayValue?.count == 2)
            let id = try #require(registered["client_id"]?.stringValue)
            #expect(try await app.storage.clients.client(id: id)?.authMethod == RegisteredClient.AuthMethod.none)

            let confidential = try jsonObject(
                try await client.postJSON(
                    "/register",
                    #"{"redirect_uris":["https://app.example.com/cb"],"token_endpoint_auth_method":"client_secret_post"}"#
                ))
            let secret = try #require(confidential["client_secret"]?.stringValue)
            #expect(secret.hasPrefix("mcpgw_cs_"))
            #expect(confidential["client_secret_expires_at"] == 0)
            let confidentialID = try #require(confidential["client_id"]?.stringValue)
            let stored = try #require(try await app.storage.clients.client(id: confidentialID))
            #expect(stored.secretDigest == SecretDigest.hex(secret))
        }
    }

    @Test(arguments: [
        (#"{"redirect_uris":["javascript:alert(1)"]}"#, "invalid_redirect_uri"),
        (#"{"redirect_uris":["data:text/html,<script>"]}"#, "invalid_redirect_uri"),
        (#"{"redirect_uris":["file:///etc/passwd"]}"#, "invalid_redirect_uri"),
        (#"{"redirect_uris":["http://evil.example.com/cb"]}"#, "invalid_redirect_uri"),
        (#"{"redirect_uris":["https://app.example.com/cb#fragment"]}"#, "invalid_redirect_uri"),
        (#"{"redirect_uris":["https://user:pw@app.example.com/cb"]}"#, "invalid_redirect_uri"),
        (#"{"redirect_uris":["/relative"]}"#, "invalid_redirect_uri"),
        (#"{"redirect_uris":[]}"#, "invalid_redirect_uri"),
        (#"{"redirect_uris":"https://app.example.com/cb"}"#, "invalid_redirect_uri"),
        (#"{"client_name":"no uris"}"#, "invalid_redirect_uri"),
        (
            #"{"redirect_uris":["https://a.example/cb"],"token_endpoint_auth_method":"private_key_jwt"}"#,
            "invalid_client_metadata"
        ),
        (
            #"{"redirect_uris":["https://a.example/cb"],"grant_types":["client_credentials"]}"#,
            "invalid_client_metadata"
        ),
        (#"{"redirect_uris":["https://a.example/cb"],"grant_types":["refresh_token"]}"#, "invalid_client_metadata"),
        (#"{"redirect_uris":["https://a.example/cb"],"response_types":["token"]}"#, "invalid_client_metadata"),
        (#"{"redirect_uris":["https://a.example/cb"],"scope":"admin"}"#, "invalid_client_metadata"),
        (#"{"redirect_uris":["https://a.example/cb"],"client_name":42}"#, "invalid_client_metadata"),
        (#"{"redirect_uris":["https://a.example/cb"],"logo_uri":"javascript:alert(1)"}"#, "invalid_client_metadata"),
        (
            #"{"redirect_uris":["https://a.example/cb"],"client_uri":"http://evil.example.com"}"#,
            "invalid_client_metadata"
        ),
        ("[1]", "invalid_client_metadata"),
        ("not json", "invalid_client_metadata"),
    ])
    func invalidMetadataIsRefused(body: String, error: String) async throws {
        let app = try await GatewayTestApp()
        try await app.run { client in
            try expectOAuthError(try await client.postJSON("/register", body), .badRequest, error)
        }
    }

    @Test func nameLengthBodySizeAndMediaTypeAreLimited() async throws {
        let app = try await GatewayTestApp()
        try await app.run { client in
            let longName = String(repeating: "n", count: 201)
            try expectOAuthError(
                try await client.postJSON(
                    "/register", #"{"redirect_uris":["https://a.example/cb"],"client_name":"\#(longName)"}"#),
                .badRequest, "invalid_client_metadata")
            let huge = String(repeating: "x", count: 20_000)
            try expectOAuthError(
                try await client.postJSON(
                    "/register", #"{"redirect_uris":["https://a.example/cb"],"client_name":"\#(huge)"}"#),
                .contentTooLarge, "request_too_large")
            let form = try await client.postForm("/register", [("redirect_uris", "https://a.example/cb")])
            try expectOAuthError(form, .badRequest, "invalid_client_metadata")
        }
    }
}
