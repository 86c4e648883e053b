import JSON
import JWTAuth

/// The claims that carry a caller's groups and roles (`groups` and `roles` unless the policy file names others, such
/// as Auth0's namespaced custom claims).
struct IdentityClaimNames: Sendable, Equatable {
    var groups = "groups"
    var roles = "roles"

    /// The values of claim `name`: a list of strings, or one string (space-separated values, as some providers send
    /// them).
    static func values(_ claims: [String: JSONValue], _ name: String) -> [String] {
        switch claims[name] {
        case .string(let value)?: value.split(separator: " ").map(String.init)
        case .array(let values)?: values.compactMap(\.stringValue)
        default: []
        }
    }

    func groups(in claims: [String: JSONValue]) -> [String] { Self.values(claims, groups) }
    func roles(in claims: [String: JSONValue]) -> [String] { Self.values(claims, roles) }
}
