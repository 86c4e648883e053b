/// The revisions of the Model Context Protocol the gateway speaks.
///
/// - 2026-07-28 is stateless ("modern"): no `initialize`, no sessions; every request carries its version and the
///   client's capabilities in `_meta`, and Streamable HTTP mirrors the method and name in headers.
/// - 2025-11-25, 2025-06-18 and 2025-03-26 open a session with `initialize` over Streamable HTTP (`/mcp`).
/// - 2024-11-05 is the HTTP+SSE transport (`/sse` and `/messages`).
enum ProtocolRevision: String, CaseIterable, Sendable, Comparable {
    case v20241105 = "2024-11-05"
    case v20250326 = "2025-03-26"
    case v20250618 = "2025-06-18"
    case v20251125 = "2025-11-25"
    case v20260728 = "2026-07-28"

    /// The newest revision, and the newest that opens sessions with `initialize`.
    static let latest = v20260728
    static let latestWithSessions = v20251125

    /// Every revision, newest first, as errors and `server/discover` list them.
    static let supportedNames = allCases.reversed().map(\.rawValue)

    /// Whether requests of this revision stand alone (2026-07-28), rather than belong to a session.
    var isStateless: Bool { self >= .v20260728 }

    /// JSON-RPC batches (a JSON array of messages) exist in 2025-03-26 only: 2025-06-18 removed them.
    var allowsBatches: Bool { self == .v20250326 }

    /// The revision a server answers an `initialize` request with: the one asked for when it opens sessions,
    /// otherwise the newest that does (a client offering a revision the gateway does not know, or 2026-07-28, which
    /// has no `initialize`, gets that and decides whether it can continue).
    static func negotiated(forInitialize requested: String) -> ProtocolRevision {
        guard let revision = ProtocolRevision(rawValue: requested), !revision.isStateless else {
            return latestWithSessions
        }
        return revision
    }

    static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }
}
