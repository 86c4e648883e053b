import JWTAuth

/// The scopes a caller needs for a tool: all the scopes of any one of ``alternatives`` (an OpenAPI operation's
/// `security` lists alternatives, each naming the scopes it needs together). No alternative: any signed-in caller.
struct ScopeRequirement: Sendable, Equatable, CustomStringConvertible {
    let alternatives: [ScopeSet]

    static let none = ScopeRequirement(alternatives: [])

    init(alternatives: [ScopeSet]) { self.alternatives = alternatives }
    init(_ scope: String) { self.alternatives = [[scope]] }

    /// The alternative `granted` covers with the fewest scopes (the first of those), so that a downstream token
    /// carries no more than the call needs; `[]` when nothing is needed; `nil` when none is covered.
    func chosen(for granted: ScopeSet) -> ScopeSet? {
        if alternatives.isEmpty { return [] }
        return alternatives.filter { granted.isSuperset(of: $0) }.min { $0.sorted.count < $1.sorted.count }
    }

    func isMet(by granted: ScopeSet) -> Bool { chosen(for: granted) != nil }

    /// What a caller with `granted` should ask for to use the tool: the scopes of the alternative it is closest to
    /// (fewest missing) that it lacks; `nil` when it needs nothing more.
    func missing(from granted: ScopeSet) -> ScopeSet? {
        guard !isMet(by: granted) else { return nil }
        return alternatives.map { $0.subtracting(granted) }.min { $0.sorted.count < $1.sorted.count }
    }

    /// `read:todos`, `read:a and read:b`, `read:a, or admin`.
    var description: String {
        alternatives.map { $0.sorted.joined(separator: " and ") }.joined(separator: ", or ")
    }
}
