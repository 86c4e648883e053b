import JSON
import JWTAuth
import Logging

/// The gateway's tools, in the order `tools/list` shows them (a stable order, so clients and model prompt caches can
/// rely on it), and the one way to call one: by name, with the scope it needs checked first.
struct ToolBox: Sendable {
    let tools: [any GatewayTool]
    private let byName: [String: any GatewayTool]
    /// The `tools` array of `tools/list`, built once: the definitions never change while the gateway runs.
    let definitions: JSONValue
    /// Who may call which tool beyond scopes (`TOOL_POLICY_FILE`); `nil`: anyone with the scope.
    let policy: ToolPolicy?
    /// Where refused calls are recorded.
    let audit: AuditLog

    init(_ tools: [any GatewayTool], policy: ToolPolicy? = nil, audit: AuditLog = AuditLog()) {
        self.audit = audit
        self.tools = tools
        self.byName = Dictionary(tools.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        self.definitions = .array(tools.map(\.definition))
        self.policy = policy
    }

    /// The gateway's own tools (`whoami`) first, then the tools made from the APIs' documents. A hand-written tool
    /// replaces a generated one of the same name, in the generated one's place.
    static func combining(
        handWritten: [any GatewayTool], generated: [any GatewayTool], policy: ToolPolicy? = nil,
        audit: AuditLog = AuditLog()
    ) -> ToolBox {
        let replacements = Dictionary(handWritten.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        let generatedNames = Set(generated.map(\.name))
        let tools =
            handWritten.filter { !generatedNames.contains($0.name) }
            + generated.map { replacements[$0.name] ?? $0 }
        return ToolBox(tools, policy: policy, audit: audit)
    }

    /// Whether the policy lets `caller` call `name` (always, without a policy).
    func allows(_ name: String, for caller: ToolCaller) -> Bool { policy?.allows(name, for: caller) ?? true }

    /// The `tools` array of `tools/list` for `caller`: only the tools the policy lets them call.
    func definitions(for caller: ToolCaller) -> JSONValue {
        guard policy != nil else { return definitions }
        return .array(tools.filter { allows($0.name, for: caller) }.map(\.definition))
    }

    func tool(named name: String) -> (any GatewayTool)? { byName[name] }

    /// The scopes the tool `name` needs; `nil` for unknown tools.
    func scopes(of name: String) -> ScopeRequirement? { byName[name]?.scopes }

    /// Calls the tool `name`. An unknown tool throws ``ToolError``; a scope the caller lacks is an error result
    /// (transports that can ask for more scope do so before calling, with a 403 step-up challenge).
    func call(_ name: String, arguments: ToolArguments, caller: ToolCaller) async throws(ToolError) -> ToolResult {
        guard let tool = byName[name] else { throw ToolError("Unknown tool: \(name)") }
        guard allows(name, for: caller) else {
            audit.record(
                .toolDenied, user: caller.isMachine ? nil : caller.subject, client: caller.clientID,
                detail: ["mcp.tool": "\(name)"])
            return .failure(
                "The gateway's policy does not allow this account to use \(name). Ask the gateway's operator if you"
                    + " need it.")
        }
        if !tool.scopes.isMet(by: caller.scope) {
            return .failure("This connection was not granted the \(tool.scopes) scope that \(name) needs.")
        }
        return try await tool.call(arguments, caller: caller)
    }
}
