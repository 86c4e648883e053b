import JWTAuth

/// The scopes the gateway's authorization server offers MCP clients: those its tools' operations need (read from the
/// APIs' OpenAPI documents, ``APICatalog``), in the order and words the documents give them for the consent page, and
/// `offline_access` for refresh tokens.
struct GatewayScopes: Sendable, Equatable {
    /// The API scopes the tools need.
    let api: ScopeSet
    /// `api` in the order people read them (the documents' order).
    private let order: [String]
    private let descriptions: [String: String]

    static let offlineAccess = "offline_access"

    /// `scopes` in the order given, each with what a person reads on the consent page (the scope itself when none).
    init(_ scopes: [(name: String, description: String?)]) {
        var order: [String] = []
        var descriptions: [String: String] = [:]
        for (name, description) in scopes where name != Self.offlineAccess && descriptions[name] == nil {
            order.append(name)
            descriptions[name] = description ?? name
        }
        descriptions[Self.offlineAccess] = "Stay connected when you are away (refresh tokens)"
        self.order = order
        self.descriptions = descriptions
        self.api = ScopeSet(order)
    }

    /// `api` plus `offline_access` (refresh tokens).
    var supported: ScopeSet { api.union([Self.offlineAccess]) }
    /// What a client gets when it asks for no scope: everything, limited by what the user may do upstream.
    var `default`: ScopeSet { supported }

    /// The scopes in the order a person reads them, with descriptions.
    func describe(_ scopes: ScopeSet) -> [(scope: String, description: String)] {
        let order = self.order + [Self.offlineAccess]
        return scopes.sorted(by: { (order.firstIndex(of: $0) ?? order.count, $0) < (order.firstIndex(of: $1) ?? order.count, $1) })
            .map { ($0, descriptions[$0] ?? $0) }
    }
}
