import JWTAuth

/// The scopes the gateway's authorization server offers MCP clients, in plain words for the consent page.
enum GatewayScopes {
    /// The API scopes TodosAPI enforces.
    static let api: ScopeSet = ["read:todos", "read:billing", "write:todos"]
    /// `api` plus `offline_access` (refresh tokens).
    static let supported: ScopeSet = api.union(["offline_access"])
    /// What a client gets when it asks for no scope: everything, limited by what the user may do upstream.
    static let `default` = supported

    static let descriptions: [String: String] = [
        "read:todos": "See your todos",
        "write:todos": "Create, change and delete your todos",
        "read:billing": "See your billing details",
        "offline_access": "Stay connected when you are away (refresh tokens)",
    ]

    /// The scopes in the order a person reads them, with descriptions.
    static func describe(_ scopes: ScopeSet) -> [(scope: String, description: String)] {
        let order = ["read:todos", "write:todos", "read:billing", "offline_access"]
        return scopes.sorted(by: { (order.firstIndex(of: $0) ?? 99, $0) < (order.firstIndex(of: $1) ?? 99, $1) })
            .map { ($0, descriptions[$0] ?? $0) }
    }
}
