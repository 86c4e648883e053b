import Foundation
import JSON
import JWTAuth
import Logging
import NIOCore
import ServiceLifecycle
import ServiceSupport
import Synchronization

/// Reloads the APIs' documents (`API_OPENAPI`) on SIGHUP, and when a file they were read from changes
/// (`API_OPENAPI_WATCH`), and replaces the tools when they changed: sessions and `subscriptions/listen` streams hear
/// `notifications/tools/list_changed`. A document that cannot be read or used leaves the tools as they were, with the
/// reason in the log, as does one that needs scopes the authorization server does not offer (they are fixed at
/// start-up: restart to offer new ones).
struct ToolReloader: Service {
    /// Reads the documents again, as at start-up.
    let load: @Sendable () async throws -> APICatalog
    let server: MCPServer
    /// The scopes offered since start-up.
    let scopes: GatewayScopes
    let handWritten: [any GatewayTool]
    let policy: ToolPolicy?
    let audit: AuditLog
    let watchInterval: Duration?
    let logger: Logger
    private let state: SharedState

    /// The APIs in use and the files to watch; one reload at a time.
    final class SharedState: Sendable {
        let current: Mutex<(apis: [API], files: [String: FileStamp], reloading: Bool)>
        init(apis: [API], files: [String]) {
            current = Mutex((apis, Dictionary(uniqueKeysWithValues: Set(files).map { ($0, FileStamp(path: $0)) }), false))
        }
    }

    /// What tells a changed file: its size and modification time.
    struct FileStamp: Equatable, Sendable {
        let size: Int?
        let modified: Date?
        init(path: String) {
            let attributes = try? FileManager.default.attributesOfItem(atPath: path)
            size = attributes?[.size] as? Int
            modified = attributes?[.modificationDate] as? Date
        }
    }

    init(
        catalog: APICatalog, load: @escaping @Sendable () async throws -> APICatalog, server: MCPServer,
        handWritten: [any GatewayTool], policy: ToolPolicy?, audit: AuditLog, watchInterval: Duration?, logger: Logger
    ) {
        self.load = load
        self.server = server
        self.scopes = catalog.scopes
        self.handWritten = handWritten
        self.policy = policy
        self.audit = audit
        self.watchInterval = watchInterval
        self.logger = logger
        self.state = SharedState(apis: catalog.apis, files: catalog.files)
    }

    func run() async throws {
        let hangUps = Self.hangUps()
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                for await _ in hangUps { await self.reload(reason: "SIGHUP") }
            }
            if let watchInterval {
                group.addTask {
                    while !Task.isCancelled {
                        try? await Task.sleep(for: watchInterval)
                        if self.filesChanged() { await self.reload(reason: "a document file changed") }
                    }
                }
            }
            try? await gracefulShutdown()
            group.cancelAll()
        }
        // The APIs of reloads are not services of their own: their connections close here.
        for api in state.current.withLock({ $0.apis }) { api.http.shutdown() }
    }

    /// SIGHUP, as a stream; the signal no longer ends the process.
    private static func hangUps() -> AsyncStream<Void> {
        AsyncStream { continuation in
            signal(SIGHUP, SIG_IGN)
            let source = SignalSource(DispatchSource.makeSignalSource(signal: SIGHUP, queue: .global()))
            source.source.setEventHandler { continuation.yield() }
            source.source.resume()
            continuation.onTermination = { _ in source.source.cancel() }
        }
    }

    /// A dispatch source, handed to the stream's termination handler (it is thread-safe; Swift cannot tell).
    private final class SignalSource: @unchecked Sendable {
        let source: any DispatchSourceSignal
        init(_ source: any DispatchSourceSignal) { self.source = source }
    }

    private func filesChanged() -> Bool {
        state.current.withLock { current in
            var changed = false
            for (path, stamp) in current.files {
                let now = FileStamp(path: path)
                if now != stamp {
                    current.files[path] = now
                    changed = true
                }
            }
            return changed
        }
    }

    /// Reads the documents again and replaces the tools if they changed; `true` when they were replaced.
    @discardableResult
    func reload(reason: String) async -> Bool {
        guard state.current.withLock({ current in
            defer { current.reloading = true }
            return !current.reloading
        }) else { return false }
        defer { state.current.withLock { $0.reloading = false } }
        let catalog: APICatalog
        do { catalog = try await load() } catch {
            logger.error(
                "The APIs' documents could not be reloaded; the tools stay as they were",
                metadata: ["reason": "\(reason)", "error": "\(error)"])
            return false
        }
        let missing = catalog.scopes.api.subtracting(scopes.api)
        if !missing.isEmpty {
            logger.error(
                """
                The reloaded documents need scopes the authorization server does not offer; restart the gateway to \
                offer them. The tools stay as they were.
                """,
                metadata: ["reason": "\(reason)", "scopes": "\(missing)"])
            for api in catalog.apis { api.http.shutdown() }
            return false
        }
        let tools = ToolBox.combining(handWritten: handWritten, generated: catalog.tools, policy: policy, audit: audit)
        do { try policy?.check(toolNames: Set(tools.tools.map(\.name))) } catch {
            logger.error(
                "The reloaded documents lack a tool TOOL_POLICY_FILE names; the tools stay as they were",
                metadata: ["reason": "\(reason)", "error": "\(error.problem)"])
            for api in catalog.apis { api.http.shutdown() }
            return false
        }
        let inUse = state.current.withLock { $0.apis }
        guard tools.definitions != server.dispatcher.tools.definitions || Self.differ(inUse, catalog.apis) else {
            logger.info("The APIs' documents were reloaded; the tools are unchanged", metadata: ["reason": "\(reason)"])
            for api in catalog.apis { api.http.shutdown() }
            return false
        }
        let retired: [API] = state.current.withLock { current in
            defer {
                current.apis = catalog.apis
                for path in catalog.files where current.files[path] == nil { current.files[path] = FileStamp(path: path) }
            }
            return current.apis
        }
        let told = server.replaceTools(tools)
        logger.notice(
            "The tools were replaced from the reloaded documents",
            metadata: ["reason": "\(reason)", "mcp.tools": "\(tools.tools.count)", "mcp.notified_streams": "\(told)"])
        // Calls still running on the old connections finish first.
        let grace = retired.map(\.timeout).max() ?? .seconds(10)
        Task {
            try? await Task.sleep(for: .nanoseconds(grace.nanoseconds) + .seconds(1))
            for api in retired { api.http.shutdown() }
        }
        return true
    }

    private static func differ(_ old: [API], _ new: [API]) -> Bool {
        old.map { "\($0.baseURL) \($0.audience ?? "") \($0.timeout)" } != new.map {
            "\($0.baseURL) \($0.audience ?? "") \($0.timeout)"
        }
    }
}
