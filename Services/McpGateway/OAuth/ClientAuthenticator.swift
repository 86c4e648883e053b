import Foundation
import Hummingbird
import JSON
import JWTAuth
import ServiceSupport

/// Authenticates the client of a token or revocation request by the method it registered (RFC 6749 §2.3): public
/// clients send only `client_id`; confidential ones their secret by Basic or in the body, as registered, or a JWT
/// signed with their key (`private_key_jwt`, RFC 7523 §2.2). One method per request.
struct ClientAuthenticator {
    static let realm = "mcp-gateway"
    static let assertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    let clients: ClientDirectory
    /// Checks `private_key_jwt` assertions; without it such clients cannot authenticate here.
    var assertions: ClientAssertions? = nil

    func authenticate(_ request: Request, _ parameters: FormParameters) async throws -> RegisteredClient {
        if let type = try parameters.single("client_assertion_type") {
            guard type == Self.assertionType else {
                throw ErrorResponse.invalidClient(
                    "client_assertion_type must be \(Self.assertionType)", realm: Self.realm)
            }
            guard request.headers[.authorization] == nil, try parameters.single("client_secret") == nil else {
                throw ErrorResponse.invalidRequest(
                    "Authenticate the client with one method: a client assertion, Basic or client_secret")
            }
            guard let assertions else {
                throw ErrorResponse.invalidClient("Client assertions are not accepted here", realm: Self.realm)
            }
            return try await assertions.authenticate(
                try parameters.required("client_assertion"), claimedID: try parameters.single("client_id"))
        }
        let credentials = try ClientCredentials.read(from: request, parameters: parameters, realm: Self.realm)
        guard let client = try await clients.client(credentials.clientID) else {
            throw ErrorResponse.invalidClient("Unknown client: register it first", realm: Self.realm)
        }
        switch client.authMethod {
        case .none:
            guard credentials.secret == nil else {
                throw ErrorResponse.invalidClient("This client is public and has no secret", realm: Self.realm)
            }
        case .clientSecretBasic, .clientSecretPost:
            guard credentials.method.rawValue == client.authMethod.rawValue else {
                throw ErrorResponse.invalidClient(
                    "This client authenticates with \(client.authMethod.rawValue)", realm: Self.realm)
            }
            guard let secret = credentials.secret, let digest = client.secretDigest,
                SecretDigest.matches(secret, digest: digest)
            else { throw ErrorResponse.invalidClient("Client authentication failed", realm: Self.realm) }
        case .privateKeyJWT:
            throw ErrorResponse.invalidClient(
                "This client authenticates with private_key_jwt: send client_assertion_type and client_assertion",
                realm: Self.realm)
        }
        return client
    }
}

/// `private_key_jwt` (RFC 7523 §2.2, §3): the client signs a short JWT with `iss` and `sub` its client id, `aud` the
/// gateway (its issuer or its token endpoint), `exp`, and a `jti` used once.
struct ClientAssertions: Sendable {
    let clients: ClientDirectory
    let keys: ClientKeys
    let oneTime: OneTimeAssertion
    /// The audiences a client assertion may name: the gateway's issuer and its token endpoint.
    let audiences: Set<String>

    func authenticate(_ assertion: String, claimedID: String?) async throws -> RegisteredClient {
        func refused(_ message: String) -> ErrorResponse {
            ErrorResponse.invalidClient(message, realm: ClientAuthenticator.realm)
        }
        // The client is named by the assertion; which one it claims is read before the signature is checked, and
        // only chooses the key that must have signed it.
        guard let claims = try? UnverifiedClaims.read(assertion), let id = claims["sub"]?.stringValue,
            claims["iss"]?.stringValue == id
        else { throw refused("The client assertion must be a JWT whose iss and sub are the client id") }
        if let claimedID, claimedID != id { throw refused("client_id does not match the client assertion") }
        guard let client = try await clients.client(id), client.authMethod == .privateKeyJWT else {
            throw refused("No client registered for private_key_jwt has this id")
        }
        guard let keys = await keys.keys(of: client) else { throw refused("The client has no usable public keys") }
        let verifier = JWTVerifier(
            configuration: .init(
                issuer: id, audiences: audiences, allowedAlgorithms: ClientKeys.algorithms, cacheCapacity: 0,
                acceptedTypes: ["jwt", "client-authentication+jwt"],
                // A client with one key for the algorithm need not name it (the Python SDK's assertions do not).
                allowsMissingKeyID: true),
            keys: keys, clock: oneTime.clock)
        do throws(OneTimeAssertion.Failure) {
            let token = try await oneTime.check(assertion, with: verifier)
            // One audience only (the revision of RFC 7523 in progress): an assertion naming several could be relayed.
            guard token.audiences.count == 1 else { throw .invalid(.invalidAudience) }
            try await oneTime.consume(token, namespace: "client:" + id, leeway: verifier.configuration.leeway)
        } catch {
            if case .unavailable(let reason) = error { throw reason }
            throw refused("The client assertion is not valid: \(error.message)")
        }
        return client
    }
}
