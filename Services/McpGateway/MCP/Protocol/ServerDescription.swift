import JSON
import JWTAuth

/// What the gateway says about itself in `initialize` and `server/discover` results, and in every 2026-07-28 result's
/// `_meta`.
struct ServerDescription: Sendable {
    let name = "mcp-todos-gateway"
    let title = "Todos"
    let version = "1.1.0"
    /// TodosAPI's tools in words; a gateway serving other APIs says which (``APICatalog/serverInstructions``).
    var instructions =
        "Tools to read and change the signed-in user's todos and to see their billing details."
    /// Whether the tool list can change while the gateway runs (``ToolReloader``: the APIs' documents are reloaded).
    var toolsCanChange = false

    /// `Implementation`: name, title and version.
    var serverInfo: JSONValue { ["name": .string(name), "title": .string(title), "version": .string(version)] }

    /// Tools only; their list changes only when the APIs' documents can be reloaded.
    var capabilities: JSONValue { ["tools": ["listChanged": .bool(toolsCanChange)]] }

    /// The result `_meta` of 2026-07-28: the server identifies itself on every result.
    var resultMeta: JSONValue { ["io.modelcontextprotocol/serverInfo": serverInfo] }
}
