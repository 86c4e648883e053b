import Foundation
import HTTPTypes
import Hummingbird
import Mustache
import ServiceSupport

/// Renders DevIdP's HTML pages from the Mustache templates in `Resources/templates`.
struct PageRenderer: Sendable {
    let library: MustacheLibrary

    /// Loads the bundled templates.
    static func load() async throws -> PageRenderer {
        guard let directory = Bundle.module.path(forResource: "templates", ofType: nil, inDirectory: "Resources") else {
            throw CocoaError(.fileNoSuchFile, userInfo: [NSLocalizedDescriptionKey: "DevIdP templates are missing"])
        }
        return PageRenderer(library: try await MustacheLibrary(directory: directory))
    }

    func page(_ template: String, _ context: [String: Any], status: HTTPResponse.Status = .ok) -> Response {
        HTMLPage.response(library.render(context, withTemplate: template) ?? "", status: status)
    }

    func errorPage(status: HTTPResponse.Status, heading: String, message: String) -> Response {
        page("error", ["heading": heading, "message": message], status: status)
    }
}
