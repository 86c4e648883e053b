import Foundation
import HTTPTypes
import Hummingbird
import Mustache
import ServiceSupport

/// Renders the gateway's HTML pages (consent, errors) from the Mustache templates in `Resources/templates`.
struct PageRenderer: Sendable {
    let library: MustacheLibrary

    static func load() async throws -> PageRenderer {
        guard let directory = Bundle.module.path(forResource: "templates", ofType: nil, inDirectory: "Resources") else {
            throw CocoaError(.fileNoSuchFile, userInfo: [NSLocalizedDescriptionKey: "McpGateway templates are missing"])
        }
        return PageRenderer(library: try await MustacheLibrary(directory: directory))
    }

    func page(
        _ template: String, _ context: [String: Any], status: HTTPResponse.Status = .ok,
        headers: HTTPFields = [:]
    ) -> Response {
        HTMLPage.response(library.render(context, withTemplate: template) ?? "", status: status, headers: headers)
    }

    /// An error page; `back` is an optional link back to the application (with the OAuth error for it), `requestID`
    /// what the user quotes to the operator, who finds the details in the log.
    func errorPage(
        status: HTTPResponse.Status, heading: String, message: String, back: (label: String, url: String)? = nil,
        requestID: String? = nil, headers: HTTPFields = [:]
    ) -> Response {
        var context: [String: Any] = ["heading": heading, "message": message]
        if let back { context["back"] = ["label": back.label, "url": back.url] }
        if let requestID { context["requestID"] = requestID }
        return page("error", context, status: status, headers: headers)
    }
}
