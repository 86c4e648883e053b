import Foundation
import JSON

/// An OpenID provider's discovery document (OpenID Connect Discovery 1.0 §3), as far as relying parties need it.
public struct ProviderMetadata: Sendable, Equatable {
    /// `issuer`: equal to the issuer the document was fetched for.
    public let issuer: String
    /// `jwks_uri`.
    public let jwksURI: String
    /// `authorization_endpoint`.
    public let authorizationEndpoint: String?
    /// `token_endpoint`.
    public let tokenEndpoint: String?
    /// `userinfo_endpoint`.
    public let userinfoEndpoint: String?
    /// `registration_endpoint`.
    public let registrationEndpoint: String?
    /// `revocation_endpoint`.
    public let revocationEndpoint: String?
    /// `token_endpoint_auth_methods_supported`; OIDC's default is `client_secret_basic`.
    public let tokenEndpointAuthMethods: [String]
    /// `scopes_supported`.
    public let scopesSupported: [String]
    /// `code_challenge_methods_supported`.
    public let codeChallengeMethods: [String]
    /// Every member of the document.
    public let document: [String: JSONValue]

    /// Why a discovery document was refused.
    public struct Error: Swift.Error, CustomStringConvertible, Sendable {
        public let description: String
    }

    /// Parses a discovery document fetched for `expectedIssuer`.
    ///
    /// - Throws: when the document is not JSON, names another issuer (§4.3: this prevents one provider impersonating
    ///   another), or lacks a `jwks_uri`.
    public init(json: some Collection<UInt8>, expectedIssuer: String) throws {
        guard let document = try? JSONValue(parsing: json).objectValue else {
            throw Error(description: "the discovery document is not a JSON object")
        }
        guard let issuer = document["issuer"]?.stringValue, issuer == expectedIssuer else {
            throw Error(
                description: "the discovery document names issuer '\(document["issuer"]?.stringValue ?? "")', "
                    + "expected '\(expectedIssuer)'")
        }
        guard let jwksURI = document["jwks_uri"]?.stringValue, URL(string: jwksURI)?.host != nil else {
            throw Error(description: "the discovery document has no valid jwks_uri")
        }
        self.issuer = issuer
        self.jwksURI = jwksURI
        self.authorizationEndpoint = document["authorization_endpoint"]?.stringValue
        self.tokenEndpoint = document["token_endpoint"]?.stringValue
        self.userinfoEndpoint = document["userinfo_endpoint"]?.stringValue
        self.registrationEndpoint = document["registration_endpoint"]?.stringValue
        self.revocationEndpoint = document["revocation_endpoint"]?.stringValue
        self.tokenEndpointAuthMethods =
            document["token_endpoint_auth_methods_supported"]?.stringArrayValue ?? ["client_secret_basic"]
        self.scopesSupported = document["scopes_supported"]?.stringArrayValue ?? []
        self.codeChallengeMethods = document["code_challenge_methods_supported"]?.stringArrayValue ?? []
        self.document = document
    }

    /// Metadata given by configuration rather than discovered (for providers configured endpoint by endpoint, such as
    /// Cloudflare Access for SaaS in its dashboard, or GitHub, which has none). The token endpoint takes
    /// `tokenEndpointAuthMethods`, `client_secret_basic` unless said otherwise.
    public init(
        issuer: String, jwksURI: String, authorizationEndpoint: String?, tokenEndpoint: String?,
        userinfoEndpoint: String? = nil, tokenEndpointAuthMethods: [String] = ["client_secret_basic"]
    ) {
        self.issuer = issuer
        self.jwksURI = jwksURI
        self.authorizationEndpoint = authorizationEndpoint
        self.tokenEndpoint = tokenEndpoint
        self.userinfoEndpoint = userinfoEndpoint
        self.registrationEndpoint = nil
        self.revocationEndpoint = nil
        self.tokenEndpointAuthMethods = tokenEndpointAuthMethods
        self.scopesSupported = []
        self.codeChallengeMethods = []
        var document: [String: JSONValue] = ["issuer": .string(issuer), "jwks_uri": .string(jwksURI)]
        document["authorization_endpoint"] = authorizationEndpoint.map(JSONValue.string)
        document["token_endpoint"] = tokenEndpoint.map(JSONValue.string)
        document["userinfo_endpoint"] = userinfoEndpoint.map(JSONValue.string)
        self.document = document
    }

    /// Fetches and parses `<issuer>.well-known/openid-configuration`.
    public static func discover(issuer: String, fetcher: any DocumentFetching = HTTPDocumentFetcher()) async throws
        -> ProviderMetadata
    {
        let document = try await fetcher.fetch(JWKSSource.discovery(issuer: issuer).description)
        return try ProviderMetadata(json: document.body, expectedIssuer: issuer)
    }
}
