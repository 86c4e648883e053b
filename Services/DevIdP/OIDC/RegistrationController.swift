import Foundation
import Hummingbird
import JSON
import JWTAuth
import ServiceSupport

/// `POST /oidc/register`: OAuth 2.0 Dynamic Client Registration (RFC 7591), as Auth0 offers it when "OIDC Dynamic
/// Application Registration" is on. Registered clients live in memory until DevIdP restarts.
struct RegistrationController {
    let clients: ClientRegistry
    let clock: any WallClock
    var random: any RandomSource = SystemRandomSource()

    static let bodyLimit = 16 * 1024
    static let supportedGrants: Set<String> = ["authorization_code", "refresh_token"]
    static let authMethods: Set<String> = ["none", "client_secret_basic", "client_secret_post"]

    func addRoutes(to router: Router<DevIdPRequestContext>) {
        router.post("oidc/register", use: register)
    }

    @Sendable func register(_ request: Request, context: DevIdPRequestContext) async throws -> Response {
        guard request.mediaTypeIs("application/json") else {
            // RFC 7591 §3.2.2 has no code for a wrong media type; a 415 is not an error registration clients report.
            throw ErrorResponse.invalidClientMetadata("Send the client metadata as an application/json body")
        }
        let body = try await request.collectBody(limit: Self.bodyLimit)
        guard
            case .object(let metadata)? = try? JSONValue(parsing: body.readableBytesView)
        else { throw ErrorResponse.invalidClientMetadata("The body must be a JSON object") }

        guard let redirectURIs = metadata["redirect_uris"]?.stringArrayValue, !redirectURIs.isEmpty else {
            throw ErrorResponse.invalidRedirectURI("redirect_uris must be a non-empty array of URLs")
        }
        for uri in redirectURIs {
            do { try RedirectURI.validate(uri) } catch {
                throw ErrorResponse.invalidRedirectURI("The redirect URI \(uri) \(error)")
            }
        }
        let method = try string(metadata, "token_endpoint_auth_method") ?? "client_secret_basic"
        guard Self.authMethods.contains(method) else {
            throw ErrorResponse.invalidClientMetadata(
                "token_endpoint_auth_method must be one of \(Self.authMethods.sorted())")
        }
        let grants = metadata["grant_types"].map { $0.stringArrayValue ?? ["?"] } ?? ["authorization_code"]
        guard !grants.isEmpty, Set(grants).isSubset(of: Self.supportedGrants) else {
            throw ErrorResponse.invalidClientMetadata(
                "grant_types may only contain authorization_code and refresh_token")
        }
        if let responseTypes = metadata["response_types"], responseTypes.stringArrayValue != ["code"] {
            throw ErrorResponse.invalidClientMetadata("response_types must be [\"code\"]")
        }
        let name = try string(metadata, "client_name") ?? "Dynamically registered client"
        guard name.count <= 200 else { throw ErrorResponse.invalidClientMetadata("client_name is too long") }

        let clientID = random.token(byteCount: 16)
        let secret = method == "none" ? nil : random.token(byteCount: 32)
        let now = clock.now
        let client = Client(
            id: clientID, kind: secret == nil ? .public : .confidential, secretDigest: secret.map(SecretDigest.hex),
            name: name, redirectURIs: redirectURIs, grantTypes: Set(grants), createdAt: now)
        guard clients.register(client) else {
            throw ErrorResponse(
                status: .serviceUnavailable, code: "temporarily_unavailable",
                message: "Too many registered clients; restart DevIdP")
        }
        var response: [String: JSONValue] = [
            "client_id": .string(clientID), "client_id_issued_at": .integer(Int64(now.timeIntervalSince1970)),
            "client_name": .string(name), "redirect_uris": .array(redirectURIs.map(JSONValue.string)),
            "token_endpoint_auth_method": .string(method), "grant_types": .array(grants.map(JSONValue.string)),
            "response_types": ["code"],
        ]
        if let secret {
            response["client_secret"] = .string(secret)
            response["client_secret_expires_at"] = 0
        }
        return try JSONResponse.make(response, status: .created)
    }

    private func string(_ metadata: [String: JSONValue], _ name: String) throws -> String? {
        guard let value = metadata[name] else { return nil }
        guard let text = value.stringValue else {
            throw ErrorResponse.invalidClientMetadata("\(name) must be a string")
        }
        return text
    }
}
