import HTTPTypes
import Hummingbird

extension RouterMethods {
    /// Answers the common methods a path does not serve with `405 Method Not Allowed` and an `Allow` header, after the
    /// group's middleware (so an unauthenticated caller still gets a 401 first).
    @discardableResult
    public func refuseOtherMethods(on path: RouterPath, allowed: [HTTPRequest.Method]) -> Self {
        let allow = allowed.map(\.rawValue).joined(separator: ", ")
        let common: [HTTPRequest.Method] = [.get, .post, .put, .patch, .delete]
        for method in common where !allowed.contains(method) {
            on(path, method: method) { _, _ -> Response in
                throw ErrorResponse(
                    status: .methodNotAllowed, code: "method_not_allowed", message: "Use \(allow) on this path",
                    headers: [.allow: allow])
            }
        }
        return self
    }
}
