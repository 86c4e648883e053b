import Foundation
import Hummingbird
import JSON
import JWTAuth
import ServiceSupport

/// The parameters of a token request: form-encoded (RFC 6749) or JSON, as Auth0's `/oauth/token` accepts both.
enum TokenRequestBody {
    static let limit = 16 * 1024

    static func parameters(of request: Request) async throws -> FormParameters {
        if request.mediaTypeIs("application/json") {
            let body = try await request.collectBody(limit: limit)
            guard
                case .object(let object)? = try? JSONDecoder().decode(
                    JSONValue.self, from: Data(body.readableBytesView))
            else { throw ErrorResponse.invalidRequest("The body is not a JSON object") }
            var pairs: [(name: String, value: String)] = []
            for (name, value) in object.sorted(by: { $0.key < $1.key }) {
                guard let text = value.stringValue else {
                    throw ErrorResponse.invalidRequest("The parameter '\(name)' must be a string")
                }
                pairs.append((name, text))
            }
            return FormParameters(pairs)
        }
        return try await request.formParameters(limit: limit)
    }
}
