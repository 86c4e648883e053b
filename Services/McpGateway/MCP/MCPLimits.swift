import Foundation
import ServiceSupport

/// Bounds on what MCP clients can make the gateway hold or do at once. Each is a setting with a default that serves
/// normal clients many times over; each refusal is a clear HTTP status with a JSON-RPC error. See
/// docs/configuration.md.
struct MCPLimits: Sendable {
    /// `MCP_MAX_REQUEST_BYTES`: the largest body of a POST to `/mcp` or `/messages` (413 beyond).
    var maximumRequestBytes = 262_144
    /// `MCP_MAX_BATCH`: the most messages in a JSON-RPC batch (2025-03-26 sessions only).
    var maximumBatchLength = 32
    /// `MCP_MAX_IN_FLIGHT_PER_SESSION` and `MCP_MAX_IN_FLIGHT_PER_USER`: requests answered at once (429 beyond).
    var maximumInFlightPerSession = 16
    var maximumInFlightPerUser = 32
    /// `MCP_MAX_SESSIONS`, `MCP_MAX_SESSIONS_PER_USER`, `MCP_SESSION_IDLE_TIMEOUT`.
    var sessions = SessionRegistry.Limits(idleTimeout: 1800, maximum: 1000, maximumPerUser: 16)
    /// `MCP_SESSION_LIFETIME`: how long a session lasts after `initialize`, on any instance (see ``SessionIDs``).
    var sessionLifetime: TimeInterval = 86_400
    /// `MCP_MAX_STREAMS_PER_USER`: open `subscriptions/listen` streams per user (429 beyond).
    var maximumListenStreamsPerUser = 8
    /// `MCP_STREAM_BUFFER_BYTES`, `MCP_STREAM_STALL_TIMEOUT`, `MCP_KEEPALIVE_INTERVAL`: see ``EventStream``.
    var stream = EventStream.Limits(bufferBytes: 262_144, stallTimeout: .seconds(30), keepAliveInterval: .seconds(15))
    /// `MCP_CACHE_TTL`: how long 2026-07-28 clients may reuse the tool list and discovery result.
    var cacheLifetime: TimeInterval = 300

    static func load(from settings: Settings) throws(ConfigurationError) -> MCPLimits {
        var limits = MCPLimits()
        limits.maximumRequestBytes = try settings.integer(
            "MCP_MAX_REQUEST_BYTES", default: limits.maximumRequestBytes, in: 4096...16_777_216)
        limits.maximumBatchLength = try settings.integer(
            "MCP_MAX_BATCH", default: limits.maximumBatchLength, in: 1...1000)
        limits.maximumInFlightPerSession = try settings.integer(
            "MCP_MAX_IN_FLIGHT_PER_SESSION", default: limits.maximumInFlightPerSession, in: 1...10_000)
        limits.maximumInFlightPerUser = try settings.integer(
            "MCP_MAX_IN_FLIGHT_PER_USER", default: limits.maximumInFlightPerUser, in: 1...100_000)
        limits.sessions = SessionRegistry.Limits(
            idleTimeout: try settings.duration(
                "MCP_SESSION_IDLE_TIMEOUT", default: limits.sessions.idleTimeout, in: 1...86_400),
            maximum: try settings.integer("MCP_MAX_SESSIONS", default: limits.sessions.maximum, in: 1...1_000_000),
            maximumPerUser: try settings.integer(
                "MCP_MAX_SESSIONS_PER_USER", default: limits.sessions.maximumPerUser, in: 1...10_000))
        limits.sessionLifetime = try settings.duration(
            "MCP_SESSION_LIFETIME", default: limits.sessionLifetime, in: 60...30 * 86_400)
        limits.maximumListenStreamsPerUser = try settings.integer(
            "MCP_MAX_STREAMS_PER_USER", default: limits.maximumListenStreamsPerUser, in: 1...10_000)
        limits.stream = EventStream.Limits(
            bufferBytes: try settings.integer(
                "MCP_STREAM_BUFFER_BYTES", default: limits.stream.bufferBytes, in: 4096...67_108_864),
            stallTimeout: .milliseconds(
                Int64(try settings.duration("MCP_STREAM_STALL_TIMEOUT", default: 30, in: 0.1...3600) * 1000)),
            keepAliveInterval: .milliseconds(
                Int64(try settings.duration("MCP_KEEPALIVE_INTERVAL", default: 15, in: 0.1...3600) * 1000)))
        limits.cacheLifetime = try settings.duration("MCP_CACHE_TTL", default: limits.cacheLifetime, in: 0...86_400)
        return limits
    }
}
