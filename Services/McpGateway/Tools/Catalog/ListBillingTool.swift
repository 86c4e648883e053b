import JSON
import JWTAuth

/// `list-billing`: the user's billing details, behind its own scope (`read:billing`), so that a client can be
/// granted the todos without them.
struct ListBillingTool: GatewayTool {
    let api: any TodosAPI
    let name = "list-billing"
    let requiredScope: String? = "read:billing"
    let definition = Self.toolDefinition(
        name: "list-billing", title: "Show billing details",
        description: "Show the signed-in user's billing details. Needs the read:billing scope.",
        input: TodoSchema.noArguments,
        output: [
            "type": "object",
            "properties": [
                "billing": [
                    "type": "object",
                    "properties": [
                        "method": ["type": "string"], "last4": ["type": "string"], "expiration": ["type": "string"],
                    ],
                    "required": ["method", "last4", "expiration"],
                ]
            ],
            "required": ["billing"],
        ],
        readOnly: true)

    func call(_ arguments: ToolArguments, caller: ToolCaller) async throws(ToolError) -> ToolResult {
        try arguments.expectOnly([])
        return ToolResult(await api.billing(for: caller)) { ["billing": $0] }
    }
}
