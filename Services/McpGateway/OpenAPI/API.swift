import Foundation
import JSON
import Logging
import NIOCore
import ServiceLifecycle

/// One API behind the gateway: where its calls go, whom its tokens are for, and how its answers are read.
struct API: Sendable, Service {
    /// `info.title` of its document: how messages name it ("the Todos API").
    let title: String
    /// The `aud` of the tokens it accepts; `nil`: `DOWNSTREAM_AUDIENCE`.
    let audience: String?
    /// Calls the base URL over kept-alive connections; nothing is sent anywhere else.
    let http: KeepAliveHTTPClient
    /// `API_TIMEOUT`: one request, from asking for a connection to the last byte of the answer.
    var timeout: TimeAmount = .seconds(10)
    /// The most of an answer a tool result carries; a longer one is cut, with a note.
    var maximumResultBytes = 256 * 1024
    var logger = Logger(label: "McpGateway.API")

    /// Where the API is, for the log.
    var baseURL: String {
        let origin = http.origin
        return (origin.secure ? "https://" : "http://") + origin.hostHeader + origin.basePath
    }

    /// How messages name the API ("The Todos API failed"): its title, or "API" when it has none.
    var name: String {
        let trimmed = title.trimmingCharacters(in: .whitespacesAndNewlines)
        return trimmed.isEmpty ? "API" : trimmed
    }

    /// Runs beside the server; when the gateway shuts down, the connections are closed and requests still waiting for
    /// one fail at once.
    func run() async throws {
        try? await gracefulShutdown()
        http.shutdown()
    }
}
