import JSON
import JWTAuth

/// `whoami`: who is signed in, the OAuth client acting for them and the scopes granted. Any signed-in user may call
/// it, and it reaches nothing but the caller's own identity.
struct WhoAmITool: GatewayTool {
    let name = "whoami"
    let scopes = ScopeRequirement.none
    let definition = Self.toolDefinition(
        name: "whoami", title: "Who am I",
        description:
            "Show who is signed in (identity claims), the OAuth client acting for them (none behind Cloudflare "
            + "Access) and which scopes this connection was granted. A machine client (client credentials) acts for "
            + "no user: machine_client is true and sub is its client id.",
        input: ["type": "object", "properties": [:], "additionalProperties": false],
        output: [
            "type": "object",
            "properties": [
                "sub": ["type": "string"], "name": ["type": ["string", "null"]],
                "email": ["type": ["string", "null"]], "client_id": ["type": ["string", "null"]],
                "scopes": ["type": "array", "items": ["type": "string"]],
                "machine_client": ["type": "boolean"],
            ],
            "required": ["sub", "client_id", "scopes"],
        ],
        readOnly: true)

    func call(_ arguments: ToolArguments, caller: ToolCaller) async throws(ToolError) -> ToolResult {
        try arguments.expectOnly([])
        return .success([
            "sub": .string(caller.subject), "name": caller.name.map(JSONValue.string) ?? .null,
            "email": caller.email.map(JSONValue.string) ?? .null,
            "client_id": caller.clientID.map(JSONValue.string) ?? .null,
            "scopes": .array(caller.scope.sorted.map(JSONValue.string)), "machine_client": .bool(caller.isMachine),
        ])
    }
}
