import Hummingbird
import JWTAuth
import NIOCore
import ServiceSupport

/// `/api/me`: the claims of the caller's verified token, exactly as the issuer signed them.
struct MeController {
    func addRoutes(to group: RouterGroup<TodosRequestContext>) {
        group.get("me") { _, context in
            guard let token = context.token else {
                throw ErrorResponse(.missingToken, realm: TodosAPIConfiguration.realm)
            }
            return Response(
                status: .ok, headers: [.contentType: "application/json; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(bytes: token.payloadJSON)))
        }
        group.refuseOtherMethods(on: "me", allowed: [.get])
    }
}
