import Hummingbird
import NIOCore
import ServiceSupport

/// `/.well-known/jwks.json`: the public halves of the keys the gateway signs downstream tokens with, for TodosAPI
/// (and any other API that trusts the gateway) to verify them. Every instance serves the same set.
struct JWKSController {
    let keys: SigningKeyRing

    func addRoutes(to router: Router<GatewayRequestContext>) {
        router.get(".well-known/jwks.json") { _, _ -> Response in
            guard let loaded = keys.keys else {
                throw ErrorResponse(
                    status: .serviceUnavailable, code: "temporarily_unavailable",
                    message: "The signing keys are not loaded yet; retry in a moment")
            }
            // Cached for less than a new key's lead, so that a verifier that honours it has the key before it signs.
            let maxAge = Int(min(300, keys.schedule.lead / 2))
            return Response(
                status: .ok,
                headers: [.contentType: "application/jwk-set+json", .cacheControl: "public, max-age=\(maxAge)"],
                body: .init(byteBuffer: ByteBuffer(bytes: loaded.document)))
        }
    }
}
