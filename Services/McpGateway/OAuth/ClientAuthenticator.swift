import Hummingbird
import ServiceSupport

/// Authenticates the client of a token or revocation request by the method it registered (RFC 6749 §2.3): public
/// clients send only `client_id`; confidential ones their secret by Basic or in the body, as registered.
struct ClientAuthenticator {
    static let realm = "mcp-gateway"
    let clients: ClientDirectory

    func authenticate(_ request: Request, _ parameters: FormParameters) async throws -> RegisteredClient {
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
        }
        return client
    }
}
