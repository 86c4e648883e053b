import JSON
/// A set of OAuth scopes, such as `read:todos write:todos`.
///
/// Read from a token's `scope` claim (space-separated, RFC 8693 §4.2 and RFC 9068), `scp` claim (an array, as Okta and
/// Azure AD write it) and Auth0's `permissions` claim (an array, when RBAC adds permissions to the access token).
/// Its `description` is the space-separated form, sorted so that it is stable.
public struct ScopeSet: Sendable, Hashable, Sequence, ExpressibleByArrayLiteral, CustomStringConvertible {
    /// The scopes, unordered.
    public private(set) var values: Set<String>

    /// Creates a set from individual scope names; empty names are ignored.
    public init(_ scopes: some Sequence<String>) {
        self.values = Set(scopes.filter { !$0.isEmpty })
    }

    /// Creates a set from the space-separated form used by `scope` parameters and claims.
    public init(spaceSeparated text: String) {
        self.init(text.split(separator: " ", omittingEmptySubsequences: true).map(String.init))
    }

    public init(arrayLiteral elements: String...) {
        self.init(elements)
    }

    /// The union of `scope`, `scp` and `permissions` in a token's claims. Values of the wrong type are ignored.
    public init(claims: [String: JSONValue]) {
        var scopes: [String] = []
        if let scope = claims["scope"]?.stringValue {
            scopes += scope.split(separator: " ").map(String.init)
        }
        switch claims["scp"] {
        case .string(let scp): scopes += scp.split(separator: " ").map(String.init)
        case .array: scopes += claims["scp"]?.stringArrayValue ?? []
        default: break
        }
        scopes += claims["permissions"]?.stringArrayValue ?? []
        self.init(scopes)
    }

    /// Whether `scope` is in the set.
    public func contains(_ scope: String) -> Bool { values.contains(scope) }

    /// Whether every scope of `other` is in this set.
    public func isSuperset(of other: ScopeSet) -> Bool { values.isSuperset(of: other.values) }

    /// The scopes in both sets.
    public func intersection(_ other: ScopeSet) -> ScopeSet { ScopeSet(values.intersection(other.values)) }

    /// The scopes in either set.
    public func union(_ other: ScopeSet) -> ScopeSet { ScopeSet(values.union(other.values)) }

    /// The scopes of this set that are not in `other`.
    public func subtracting(_ other: ScopeSet) -> ScopeSet { ScopeSet(values.subtracting(other.values)) }

    /// Whether the set has no scopes.
    public var isEmpty: Bool { values.isEmpty }

    /// The scopes, sorted.
    public var sorted: [String] { values.sorted() }

    /// The space-separated, sorted form.
    public var description: String { sorted.joined(separator: " ") }

    public func makeIterator() -> Set<String>.Iterator { values.makeIterator() }
}

extension ScopeSet: Codable {
    /// Decodes the space-separated form.
    public init(from decoder: any Decoder) throws {
        self.init(spaceSeparated: try decoder.singleValueContainer().decode(String.self))
    }

    /// Encodes the space-separated, sorted form.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}
