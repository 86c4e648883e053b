import Foundation
import Hummingbird
import JWTAuth
import ServiceSupport

/// The request context of TodosAPI: Hummingbird's core storage plus the verified token, once authenticated.
struct TodosRequestContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    /// Set by ``BearerAuthMiddleware`` for every route under `/api/` except `/api/health`.
    var token: VerifiedToken?

    init(source: Source) {
        self.coreContext = .init(source: source)
    }

    /// JSON with stable key order and unescaped slashes.
    var responseEncoder: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }

    /// Bodies are small JSON documents; anything bigger is refused with 413.
    var maxUploadSize: Int { TodosRequestContext.bodyLimit }
    static let bodyLimit = 16 * 1024

    /// The verified token, which must carry `scope`; a 403 `insufficient_scope` naming it otherwise.
    func requireScope(_ scope: String) throws -> VerifiedToken {
        guard let token else {
            throw ErrorResponse(BearerAuthError.missingToken, realm: TodosAPIConfiguration.realm)
        }
        guard token.scopes.contains(scope) else {
            throw ErrorResponse(BearerAuthError.insufficientScope([scope]), realm: TodosAPIConfiguration.realm)
        }
        return token
    }

    /// The caller's `sub`, which owns their todos.
    func requireOwner(scope: String) throws -> String {
        let token = try requireScope(scope)
        guard let subject = token.subject else {
            throw ErrorResponse(BearerAuthError.missingSubject, realm: TodosAPIConfiguration.realm)
        }
        return subject
    }
}
