import Foundation
import JWTAuth
import Logging
import MCP
import ServiceSupport

/// Builds the MCP server and transport of one session: the official Swift SDK's `Server` on a
/// `StatefulHTTPServerTransport` that serves exactly that session, or on a ``LegacySSETransport``. The SDK handles the session's lifecycle
/// (`initialize`, notifications, `ping`, the GET stream, `DELETE`); `tools/list` and `tools/call` are answered by
/// ``ToolRequestFastPath`` before a request reaches it.
struct MCPServerFactory: Sendable {
    let logger: Logger

    /// A Streamable HTTP session (`/mcp`).
    func makeSession(id: String) async throws -> (Server, StatefulHTTPServerTransport) {
        let transport = StatefulHTTPServerTransport(
            sessionIDGenerator: FixedSessionID(id: id),
            validationPipeline: StandardValidationPipeline(validators: [
                // Origin is checked by the gateway before authentication; the SDK's own check only knows localhost.
                LenientAcceptValidator(), ContentTypeValidator(), ProtocolVersionValidator(), SessionValidator(),
            ]),
            logger: logger)
        let server = makeServer()
        try await server.start(transport: transport)
        return (server, transport)
    }

    /// A session of the legacy HTTP+SSE transport (`/sse` and `/messages`).
    func makeLegacySession() async throws -> (Server, LegacySSETransport) {
        let transport = LegacySSETransport(logger: logger)
        let server = makeServer()
        try await server.start(transport: transport)
        return (server, transport)
    }

    private func makeServer() -> Server {
        Server(
            name: "mcp-todos-gateway", version: "1.0.0", title: "Todos",
            instructions: "Tools to read and change the signed-in user's todos and to see their billing details.",
            capabilities: .init(tools: .init(listChanged: false)))
    }
}

/// Gives the transport the session id the gateway chose (from a CSPRNG), so that the registry knows it beforehand.
struct FixedSessionID: SessionIDGenerator {
    let id: String
    func generateSessionID() -> String { id }
}

/// The SDK's Accept check, without refusing `*/*` and `type/*` wildcards that some HTTP clients send.
struct LenientAcceptValidator: HTTPRequestValidator {
    func validate(_ request: HTTPRequest, context: HTTPValidationContext) -> HTTPResponse? {
        let accept = request.header("Accept") ?? "*/*"
        let types = accept.split(separator: ",").map {
            $0.split(separator: ";").first?.trimmingCharacters(in: .whitespaces).lowercased() ?? ""
        }
        func accepts(_ type: String) -> Bool {
            let family = type.split(separator: "/").first.map { "\($0)/*" } ?? ""
            return types.contains { $0 == type || $0 == "*/*" || $0 == family }
        }
        let needed =
            context.httpMethod == "POST"
            ? ["application/json", "text/event-stream"]
            : context.httpMethod == "GET" ? ["text/event-stream"] : []
        guard needed.allSatisfy(accepts) else {
            return .error(
                statusCode: 406,
                .invalidRequest("Not Acceptable: the Accept header must allow \(needed.joined(separator: " and "))"),
                sessionID: context.sessionID)
        }
        return nil
    }
}
