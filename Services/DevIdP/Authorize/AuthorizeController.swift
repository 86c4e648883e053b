import Foundation
import HTTPTypes
import Hummingbird
import JWTAuth
import Logging
import ServiceSupport

/// `/authorize`: the authorization code flow's front channel. `GET` validates the request and shows the sign-in form;
/// `POST` takes the form (one request a test can send) and redirects back with a code.
struct AuthorizeController {
    let configuration: DevIdPConfiguration
    let clients: ClientRegistry
    let store: GrantStore
    let pages: PageRenderer

    func addRoutes(to router: Router<DevIdPRequestContext>) {
        router.get("authorize", use: show)
        router.post("authorize", use: submit)
    }

    @Sendable func show(_ request: Request, context: DevIdPRequestContext) async throws -> Response {
        let authorization: AuthorizationRequest
        let query: FormParameters
        do { query = try request.queryParameters() } catch {
            return pages.errorPage(status: .badRequest, heading: "Invalid request", message: error.message)
        }
        do {
            authorization = try AuthorizationRequest.validate(query, clients: clients, configuration: configuration)
        } catch {
            return render(error)
        }
        let transaction = await store.begin(authorization)
        return loginPage(transaction: transaction, request: authorization, username: authorization.loginHint ?? "")
    }

    @Sendable func submit(_ request: Request, context: DevIdPRequestContext) async throws -> Response {
        let form = try await request.formParameters(limit: 16 * 1024)
        guard let transaction = try form.single("transaction"), let pending = await store.transaction(transaction)
        else {
            return pages.errorPage(
                status: .badRequest, heading: "Sign-in expired",
                message: "This sign-in is unknown or took longer than ten minutes.")
        }
        if try form.single("action") == "cancel" {
            _ = await store.finish(transaction)
            var response = render(
                .redirect(
                    uri: pending.redirectURI, error: "access_denied",
                    description: "The user cancelled the sign-in", state: pending.state))
            response.status = .seeOther  // after a form POST (RFC 9700 §4.12)
            return response
        }
        let username = try form.single("username") ?? ""
        guard
            let user = configuration.users.authenticate(username: username, password: try form.single("password") ?? "")
        else {
            return loginPage(
                transaction: transaction, request: pending, username: username,
                error: "Wrong username or password.", status: .unauthorized)
        }
        guard let finished = await store.finish(transaction) else {
            return pages.errorPage(
                status: .badRequest, heading: "Sign-in expired", message: "This sign-in was already used.")
        }
        let code = await store.issueCode(for: finished, userID: user.userID)
        context.logger.info(
            "User signed in", metadata: ["devidp.user": "\(user.username)", "oauth.client_id": "\(finished.clientID)"])
        var parameters = [("code", code)]
        if let state = finished.state { parameters.append(("state", state)) }
        return HTMLPage.redirect(
            to: RedirectURI.appending(parameters, to: finished.redirectURI), status: .seeOther)
    }

    private func loginPage(
        transaction: String, request: AuthorizationRequest, username: String, error: String? = nil,
        status: HTTPResponse.Status = .ok
    ) -> Response {
        var page: [String: Any] = [
            "action": configuration.issuer + "authorize", "transaction": transaction, "username": username,
            "clientName": clients.client(id: request.clientID)?.name ?? request.clientID,
            "scopes": request.scope.description,
            "users": configuration.users.users.map {
                [
                    "username": $0.username, "password": $0.password,
                    "permissions": $0.permissions.joined(separator: " "),
                ]
            },
        ]
        if let error { page["error"] = error }
        return pages.page("login", page, status: status)
    }

    private func render(_ error: AuthorizeError) -> Response {
        switch error {
        case .page(let status, let title, let message):
            return pages.errorPage(status: .init(code: status), heading: title, message: message)
        case .redirect(let uri, let code, let description, let state):
            var parameters = [("error", code), ("error_description", OAuthErrorText.safe(description))]
            if let state { parameters.append(("state", state)) }
            return HTMLPage.redirect(to: RedirectURI.appending(parameters, to: uri))
        }
    }
}
