import Foundation
import JWTAuth

/// A client registered through `/register` (RFC 7591), described by a metadata document, or registered by the
/// operator (`McpGateway admin add-client`: machine clients and clients of identity assertions).
struct RegisteredClient: Codable, Sendable, Equatable {
    enum AuthMethod: String, Codable, Sendable {
        case none
        case clientSecretBasic = "client_secret_basic"
        case clientSecretPost = "client_secret_post"
        /// A JWT signed with the client's key (RFC 7523 §2.2), the key from `jwks` or `jwksURI`.
        case privateKeyJWT = "private_key_jwt"
    }

    var id: String
    /// SHA-256 hex of the secret; `nil` for public clients.
    var secretDigest: String?
    var authMethod: AuthMethod
    var name: String?
    var uri: String?
    var logoURI: String?
    var redirectURIs: [String]
    var grantTypes: [String]
    var createdAt: Date
    /// The client's public keys for `private_key_jwt`: a JWK Set document, or where it is published.
    var jwks: String? = nil
    var jwksURI: String? = nil
    /// The scopes the operator allows a client of `client_credentials` or `jwt-bearer`; `nil` for the others.
    var scope: ScopeSet? = nil

    var isPublic: Bool { authMethod == .none }
}

/// What an MCP client asked for at `/authorize`, once validated.
struct ClientAuthorizationRequest: Codable, Sendable, Equatable {
    var clientID: String
    var redirectURI: String
    /// Whether the client sent `redirect_uri` (it may leave it out when it registered exactly one): then the token
    /// request must repeat it (RFC 6749 §4.1.3).
    var redirectURIIncluded: Bool
    var scope: ScopeSet
    var state: String?
    var codeChallenge: String
    var resource: String?
    /// `dpop_jkt` (RFC 9449 §10): the code may be redeemed only with a proof of this key.
    var dpopJKT: String? = nil

    init(
        clientID: String, redirectURI: String, redirectURIIncluded: Bool = true, scope: ScopeSet, state: String?,
        codeChallenge: String, resource: String?
    ) {
        self.clientID = clientID
        self.redirectURI = redirectURI
        self.redirectURIIncluded = redirectURIIncluded
        self.scope = scope
        self.state = state
        self.codeChallenge = codeChallenge
        self.resource = resource
    }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        clientID = try container.decode(String.self, forKey: .clientID)
        redirectURI = try container.decode(String.self, forKey: .redirectURI)
        // Requests stored before the field existed: the stricter reading.
        redirectURIIncluded = try container.decodeIfPresent(Bool.self, forKey: .redirectURIIncluded) ?? true
        scope = try container.decode(ScopeSet.self, forKey: .scope)
        state = try container.decodeIfPresent(String.self, forKey: .state)
        codeChallenge = try container.decode(String.self, forKey: .codeChallenge)
        resource = try container.decodeIfPresent(String.self, forKey: .resource)
        dpopJKT = try container.decodeIfPresent(String.self, forKey: .dpopJKT)
    }
}

/// A value encrypted with AES-GCM, and the id of the key that did it.
struct SealedValue: Codable, Sendable, Equatable {
    var keyID: String
    var combined: Data
}

/// A sign-in waiting for the upstream provider's callback, kept server-side under the digest of an unguessable key
/// (the upstream `state`), bound to the browser that started it by the digest of a cookie, single use, for ten
/// minutes. The OIDC nonce and the encrypted PKCE verifier never leave the server.
struct PendingAuthorization: Codable, Sendable {
    var keyDigest: String
    var bindingDigest: String
    var request: ClientAuthorizationRequest
    var upstreamNonce: String
    var upstreamVerifier: SealedValue
    var expiresAt: Date

    /// How long a user has to consent and sign in upstream (the consent page's ticket lives as long).
    static let lifetime: TimeInterval = 600
}

/// The user's upstream tokens, encrypted; what the gateway uses to call TodosAPI on their behalf.
struct UpstreamTokens: Codable, Sendable, Equatable {
    var accessToken: SealedValue
    var refreshToken: SealedValue?
    var expiresAt: Date
    /// The scopes the upstream provider granted.
    var scope: ScopeSet
    /// Set, durably, just before the refresh token is sent to the provider, and cleared with the tokens it returns.
    /// Still set on the next attempt means the last one never finished (the gateway stopped while the provider may
    /// already have spent the token): a refusal then is no reuse attack.
    var refreshStartedAt: Date? = nil
    /// Set with ``refreshStartedAt`` and cleared when the refresh ends, whatever its outcome: while it lies in the
    /// future another instance is refreshing, and callers wait for its result instead of refreshing too.
    var refreshLeaseUntil: Date? = nil
}

/// Who signed in, from the ID token.
struct UserProfile: Codable, Sendable, Equatable {
    var subject: String
    var name: String?
    var email: String?
    /// The groups and roles the provider's claims named (see ``IdentityClaimNames``), for the tool policy.
    var groups: [String]? = nil
    var roles: [String]? = nil
    /// The enterprise issuer whose identity assertion named this user, when it is not the provider users sign in
    /// with: its email, groups and roles are its own say, which tool policy rules trust only when they name it.
    var assertedBy: String? = nil
}

/// An authorization given to one client: the root that codes, access and refresh tokens hang from. Revoking it
/// revokes all of them. A user signed in through the provider gave it (`upstream` holds the provider's tokens), or
/// the enterprise's provider asserted the user (an identity assertion: no `upstream`), or it is a machine client's
/// (client credentials: no `user`, no `upstream`).
struct Grant: Codable, Sendable {
    var id: String
    var clientID: String
    var user: UserProfile?
    var scope: ScopeSet
    var resource: String
    var upstream: UpstreamTokens?
    var createdAt: Date
    var expiresAt: Date
    var revokedAt: Date?
    /// Refresh rotation: the newest refresh token, and the one before it, which stays usable until the newest is used
    /// and at most until `previousRefreshValidUntil` (see ``RefreshRotation``).
    var currentRefreshDigest: String?
    var previousRefreshDigest: String?
    var previousRefreshValidUntil: Date? = nil
    /// The thumbprint of the key a public client proved with DPoP when the grant began: its refresh tokens are bound
    /// to that key (RFC 9449 §5).
    var dpopJKT: String? = nil

    func isActive(at now: Date) -> Bool { revokedAt == nil && expiresAt > now }
}

/// An authorization code, stored as its digest; single use.
struct AuthorizationCodeRecord: Codable, Sendable {
    /// How long a code may wait for its token request (RFC 6749 §4.1.2 recommends at most ten minutes).
    static let lifetime: TimeInterval = 60

    var digest: String
    var grantID: String
    var clientID: String
    var redirectURI: String
    /// Whether the token request must send `redirect_uri` (the authorization request did, RFC 6749 §4.1.3).
    var redirectURIRequired: Bool = true
    var codeChallenge: String
    var resource: String?
    var expiresAt: Date
    var redeemedAt: Date?
}

struct AccessTokenRecord: Codable, Sendable {
    var digest: String
    var grantID: String
    var clientID: String
    var scope: ScopeSet
    var resource: String
    var expiresAt: Date
    /// The thumbprint of the key the token is bound to (DPoP, RFC 9449); `nil` for a bearer token.
    var dpopJKT: String? = nil
}

/// The tokens one token request issues: an access token, and a refresh token when the grant includes
/// `offline_access`.
struct IssuedTokens: Sendable {
    var access: AccessTokenRecord
    var refreshDigest: String?
    /// With the first refresh token of a public client that proved a DPoP key: the key its refresh tokens are bound to.
    var refreshBinding: String? = nil
}

/// A key of the gateway's ``SigningKeyRing``: its `kid`, its PKCS#8 PEM sealed with ``TokenCipher`` (the `kid` is the
/// authenticated context), and when it was made, from which its use and retirement follow.
struct StoredSigningKey: Codable, Sendable, Equatable {
    var id: String
    var privateKey: SealedValue
    var createdAt: Date
}
