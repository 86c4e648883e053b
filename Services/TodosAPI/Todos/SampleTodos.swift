import Foundation

/// What a user sees the first time they list their todos, so the demo shows data at once.
enum SampleTodos {
    static func make(now: Date) -> [NewTodo] {
        func inDays(_ days: Double) -> String { CalendarDate.string(from: now.addingTimeInterval(days * 86_400)) }
        return [
            NewTodo(
                title: "Connect an MCP client to the gateway",
                description: "Point MCP Inspector at http://localhost:8788/mcp and sign in.", due: inDays(1)),
            NewTodo(
                title: "Ask the assistant for your todos",
                description: "The list-todos tool calls this API with your token.", due: inDays(3)),
            NewTodo(
                title: "Read the security invariants", description: "docs/architecture.md", due: nil,
                completed: true),
        ]
    }
}
