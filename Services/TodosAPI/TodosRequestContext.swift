import Foundation
import Hummingbird
import JWTAuth
import ServiceSupport

/// The request context of TodosAPI: Hummingbird's core storage plus the verified token, once authenticated.
struct TodosRequestContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    /// The verified access token or Access assertion, set by ``CallerAuthMiddleware`` for every route under `/api/`
    /// except `/api/health`.
    private(set) var token: VerifiedToken?
    /// What the caller may do: the token's scopes, or the scopes configured for Access users.
    private(set) var scopes: ScopeSet = []
    /// Who owns the caller's todos: the token's `sub` in its issuer's namespace, or the Access user.
    private(set) var owner: TodoOwner?

    mutating func authenticate(_ token: VerifiedToken, scopes: ScopeSet, owner: TodoOwner?) {
        self.token = token
        self.scopes = scopes
        self.owner = owner.flatMap { $0.subject.isEmpty ? nil : $0 }
    }

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
        guard scopes.contains(scope) else {
            throw ErrorResponse(BearerAuthError.insufficientScope([scope]), realm: TodosAPIConfiguration.realm)
        }
        return token
    }

    /// The caller, who owns their todos.
    func requireOwner(scope: String) throws -> TodoOwner {
        _ = try requireScope(scope)
        guard let owner else {
            throw ErrorResponse(BearerAuthError.missingSubject, realm: TodosAPIConfiguration.realm)
        }
        return owner
    }
}
