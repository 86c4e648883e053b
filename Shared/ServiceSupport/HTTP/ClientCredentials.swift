import Foundation
import Hummingbird
import JWTAuth

/// The client credentials a token request presents (RFC 6749 §2.3.1): in an `Authorization: Basic` header, or as
/// `client_id` and `client_secret` body parameters, never both.
public struct ClientCredentials: Sendable, Equatable {
    /// How the client authenticated.
    public enum Method: String, Sendable {
        case basic = "client_secret_basic"
        case post = "client_secret_post"
        case none
    }

    public let clientID: String
    public let secret: String?
    public let method: Method

    /// Reads the credentials of a token, revocation or introspection request.
    ///
    /// - Throws: `invalid_request` when credentials are sent twice or a Basic header is malformed, `invalid_client`
    ///   when no client is identified at all.
    public static func read(from request: Request, parameters: FormParameters, realm: String) throws(ErrorResponse)
        -> ClientCredentials
    {
        let bodyID = try parameters.single("client_id")
        let bodySecret = try parameters.single("client_secret")
        let authorization = request.headers[values: .authorization]
        if let header = authorization.first {
            guard authorization.count == 1, header.count > 6, header.prefix(6).lowercased() == "basic ",
                let decoded = Base64URL.decodeStandard(
                    String(header.dropFirst(6)).trimmingCharacters(in: .whitespaces)),
                let text = String(bytes: decoded, encoding: .utf8), let colon = text.firstIndex(of: ":")
            else {
                throw .invalidClient("The Authorization header is not valid Basic client authentication", realm: realm)
            }
            guard bodySecret == nil else {
                throw .invalidRequest("Authenticate the client with one method: Basic or client_secret, not both")
            }
            // RFC 6749 §2.3.1: id and secret are form-urlencoded before Basic encoding.
            guard let id = formDecode(text[..<colon]), let secret = formDecode(text[text.index(after: colon)...]),
                !id.isEmpty, !FormParameters.hasControlCharacter(id), !FormParameters.hasControlCharacter(secret)
            else { throw .invalidClient("The Basic credentials are malformed", realm: realm) }
            if let bodyID, bodyID != id { throw .invalidRequest("client_id does not match the Basic credentials") }
            return ClientCredentials(clientID: id, secret: secret, method: .basic)
        }
        guard let bodyID else {
            throw .invalidClient("The request does not identify the client (client_id)", realm: realm)
        }
        return ClientCredentials(clientID: bodyID, secret: bodySecret, method: bodySecret == nil ? .none : .post)
    }

    private static func formDecode(_ text: Substring) -> String? {
        text.replacingOccurrences(of: "+", with: " ").removingPercentEncoding
    }
}

extension Base64URL {
    /// Decodes standard base64 with padding (as in `Authorization: Basic`).
    public static func decodeStandard(_ text: String) -> [UInt8]? {
        Data(base64Encoded: text).map { [UInt8]($0) }
    }
}
