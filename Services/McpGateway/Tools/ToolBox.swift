import JWTAuth

/// The gateway's tools, in the order `tools/list` shows them (a stable order, so clients and model prompt caches can
/// rely on it), and the one way to call one: by name, with the scope it needs checked first.
struct ToolBox: Sendable {
    let tools: [any GatewayTool]
    private let byName: [String: any GatewayTool]
    /// The `tools` array of `tools/list`, built once: the definitions never change while the gateway runs.
    let definitions: JSONValue

    init(_ tools: [any GatewayTool]) {
        self.tools = tools
        self.byName = Dictionary(tools.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        self.definitions = .array(tools.map(\.definition))
    }

    /// The six tools of the Todos demo, calling `api`.
    static func todos(api: TodosAPIClient) -> ToolBox {
        ToolBox([
            WhoAmITool(), ListTodosTool(api: api), ListBillingTool(api: api), AddTodoTool(api: api),
            UpdateTodoTool(api: api), DeleteTodoTool(api: api),
        ])
    }

    func tool(named name: String) -> (any GatewayTool)? { byName[name] }

    /// The scope the tool `name` needs; `nil` for unknown tools and for tools any user may call.
    func requiredScope(of name: String) -> String? { byName[name]?.requiredScope }

    /// Calls the tool `name`. An unknown tool throws ``ToolError``; a scope the caller lacks is an error result
    /// (transports that can ask for more scope do so before calling, with a 403 step-up challenge).
    func call(_ name: String, arguments: ToolArguments, caller: ToolCaller) async throws(ToolError) -> ToolResult {
        guard let tool = byName[name] else { throw ToolError("Unknown tool: \(name)") }
        if let scope = tool.requiredScope, !caller.scope.contains(scope) {
            return .failure("This connection was not granted the \(scope) scope that \(name) needs.")
        }
        return try await tool.call(arguments, caller: caller)
    }
}
