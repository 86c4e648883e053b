import Foundation

/// TodosAPI's OpenAPI document (docs/openapi.yaml links here): the API's contract, and what the gateway makes its
/// Todos tools of when `API_OPENAPI` names no other document.
public enum TodosAPIDocument {
    /// The document's YAML text; `nil` only if the resources bundle was not installed beside the binary.
    public static func bytes() -> [UInt8]? {
        guard let url = Bundle.module.url(forResource: "openapi", withExtension: "yaml", subdirectory: "Resources"),
            let data = try? Data(contentsOf: url)
        else { return nil }
        return Array(data)
    }
}
