import AsyncHTTPClient
import Foundation
import JSON
import JWTAuth
import Logging
import NIOCore
import Resilience
import ServiceSupport
import Synchronization
import TodosAPIDocument

/// The APIs behind the gateway and the tools made of their OpenAPI documents (`API_OPENAPI`, docs/openapi-tools.md).
///
/// `API_OPENAPI` names a document (a file or an http(s) URL, fetched at start-up) whose calls go to `API_BASE_URL`
/// with tokens for `DOWNSTREAM_AUDIENCE`; or an APIs file listing several, each with its base URL, audience and
/// which operations become tools. Unset, it is TodosAPI's own document (docs/openapi.yaml, bundled).
struct APICatalog: Sendable {
    var apis: [API]
    var tools: [OpenAPITool]
    /// The files it was read from (the APIs file and the documents that are files), which ``ToolReloader`` watches.
    var files: [String] = []
    /// The scopes the tools need, in the documents' order and words (the consent page shows them): what the gateway's
    /// authorization server offers.
    var scopes: GatewayScopes

    /// What the gateway's `instructions` say when its tools are not TodosAPI's alone (those have their own words in
    /// ``ServerDescription``): the APIs they call, by their titles.
    var serverInstructions: String? {
        let names = apis.map(\.name)
        guard names != ["Todos API"] else { return nil }
        return "Tools that call \(names.isEmpty ? "no API" : names.joined(separator: ", ")) for the signed-in user."
    }

    /// One API as the APIs file (or the defaults) describe it.
    struct Entry: Sendable {
        /// A path (relative to the APIs file) or an http(s) URL; `nil`: TodosAPI's bundled document.
        var document: String?
        var baseURL: String
        var audience: String?
        var selection = OpenAPIToolSelection()
        var timeout: TimeAmount?
    }

    struct Context: Sendable {
        var defaultBaseURL: String
        var timeout: TimeAmount
        var connectTimeout: TimeAmount
        var fetcher: any DocumentFetching
        var logger: Logger
    }

    static let variable = "API_OPENAPI"

    /// The catalog `configuration` describes (`API_OPENAPI`, `API_BASE_URL`, `API_TIMEOUT`): what the gateway serves
    /// and what `admin add-client` checks scopes against.
    static func load(
        for configuration: GatewayConfiguration, httpClient: HTTPClient = .shared, fetcher: (any DocumentFetching)? = nil,
        connectTimeout: TimeAmount? = nil, logger: Logger
    ) async throws(ConfigurationError) -> APICatalog {
        let timeouts = configuration.timeouts
        return try await load(
            configuration.apiOpenAPI,
            context: .init(
                defaultBaseURL: configuration.apiBaseURL, timeout: TimeAmount(timeouts.api),
                connectTimeout: connectTimeout ?? TimeAmount(timeouts.apiConnect),
                fetcher: fetcher
                    ?? HTTPDocumentFetcher(
                        client: httpClient, timeout: TimeAmount(timeouts.api), maximumSize: OpenAPIDocument.maximumBytes),
                logger: logger))
    }

    /// Reads `API_OPENAPI` (and what it names) and makes the tools; any problem stops the gateway with what to fix.
    static func load(_ setting: String?, context: Context) async throws(ConfigurationError) -> APICatalog {
        let entries: [Entry]
        var documents: [String: (bytes: [UInt8], source: String)] = [:]
        if let setting, !setting.isEmpty {
            let (bytes, source) = try await read(setting, relativeTo: nil, fetcher: context.fetcher)
            let tree: JSONValue
            do { tree = try OpenAPIDocument.tree(bytes, source: source) } catch { throw problem(error.description) }
            if tree.objectValue?["apis"] != nil {
                entries = try parseAPIsFile(tree, source: source, context: context)
            } else {
                documents[setting] = (bytes, source)
                entries = [Entry(document: setting, baseURL: context.defaultBaseURL, audience: nil)]
            }
        } else {
            entries = [Entry(document: nil, baseURL: context.defaultBaseURL, audience: nil)]
        }
        var catalog = APICatalog(apis: [], tools: [], scopes: GatewayScopes([]))
        if let setting, !setting.lowercased().hasPrefix("http://"), !setting.lowercased().hasPrefix("https://") {
            catalog.files.append(setting)
        }
        var offered: [(name: String, description: String?)] = []
        var names: [String: String] = [:]
        for entry in entries {
            let bytes: [UInt8]
            let source: String
            if let location = entry.document {
                if let read = documents[location] {
                    (bytes, source) = read
                } else {
                    (bytes, source) = try await Self.read(location, relativeTo: setting, fetcher: context.fetcher)
                    if !location.lowercased().hasPrefix("http://"), !location.lowercased().hasPrefix("https://") {
                        catalog.files.append(source)
                    }
                }
            } else {
                (bytes, source) = try bundledTodosDocument()
            }
            let document = try await parsed(bytes, source: source)
            guard let origin = KeepAliveHTTPClient.Origin(entry.baseURL) else {
                throw problem("the base URL '\(entry.baseURL)' of \(source) must be an http or https URL without a query")
            }
            let http: KeepAliveHTTPClient
            do {
                http = try KeepAliveHTTPClient(origin: origin, configuration: .init(connectTimeout: context.connectTimeout))
            } catch { throw problem("cannot prepare calls to \(entry.baseURL): \(error)") }
            let api = API(
                title: document.title, audience: entry.audience, http: http, timeout: entry.timeout ?? context.timeout,
                logger: context.logger)
            let output: OpenAPIToolGenerator.Output
            let generator = OpenAPIToolGenerator(document: document, api: api, selection: entry.selection)
            do {
                // Off the cooperative pool, as reading the document was.
                output = try await Offload.run { try generator.tools() }
            } catch let error as OpenAPIDocument.Problem {
                throw problem("\(source): \(error.description)")
            } catch { throw problem("\(source): \(error)") }
            for skipped in output.skipped {
                context.logger.debug("An operation is not a tool", metadata: ["api": "\(api.name)", "operation": "\(skipped)"])
            }
            for tool in output.tools {
                if let other = names[tool.name] {
                    throw problem(
                        "two operations are named '\(tool.name)' (\(other) and \(source)); rename one (x-mcp-name in the"
                            + " document, or rename in the APIs file)")
                }
                names[tool.name] = source
            }
            if output.tools.isEmpty {
                context.logger.warning(
                    "No operation of the document became a tool", metadata: ["api": "\(api.name)", "document": "\(source)"])
            }
            catalog.apis.append(api)
            catalog.tools += output.tools
            // The declared scopes some tool needs, in the document's order, then those it needs undeclared.
            let needed = output.tools.flatMap { $0.scopes.alternatives.flatMap(\.sorted) }
            offered += document.declaredScopes.filter { needed.contains($0.name) }
            offered += needed.filter { name in !document.declaredScopes.contains { $0.name == name } }.map { ($0, nil) }
        }
        catalog.scopes = GatewayScopes(offered)
        return catalog
    }

    /// Documents already read, by their text: every gateway a process builds (tests build hundreds) reads TodosAPI's
    /// document once.
    private static let parsedDocuments = Mutex<[[UInt8]: OpenAPIDocument]>([:])

    /// The document of `bytes`, read on NIO's blocking pool: reading a large document takes a while, and the
    /// cooperative pool's few threads serve every request meanwhile.
    private static func parsed(_ bytes: [UInt8], source: String) async throws(ConfigurationError) -> OpenAPIDocument {
        if let known = parsedDocuments.withLock({ $0[bytes] }) { return known }
        let outcome: Result<OpenAPIDocument, OpenAPIDocument.Problem>
        do {
            outcome = try await Offload.run {
                Result { () throws(OpenAPIDocument.Problem) in try OpenAPIDocument.parse(bytes, source: source) }
            }
        } catch { throw problem("\(source) could not be read: \(error)") }
        switch outcome {
        case .success(let document):
            parsedDocuments.withLock { cache in
                if cache.count >= 16 { cache.removeAll() }
                cache[bytes] = document
            }
            return document
        case .failure(let error): throw problem(error.description)
        }
    }

    private static func problem(_ text: String) -> ConfigurationError {
        ConfigurationError(variable: variable, problem: text, example: "docs/openapi.yaml")
    }

    /// TodosAPI's document, bundled with the gateway.
    static func bundledTodosDocument() throws(ConfigurationError) -> ([UInt8], String) {
        guard let bytes = TodosAPIDocument.bytes() else {
            throw problem(
                "TodosAPI's document is missing: install mcp-todos-gateway_TodosAPIDocument.resources beside the binary")
        }
        return (bytes, "TodosAPI's document (docs/openapi.yaml)")
    }

    /// A document's bytes: a file (relative to the APIs file's folder when it names one) or an http(s) URL.
    private static func read(_ location: String, relativeTo base: String?, fetcher: any DocumentFetching)
        async throws(ConfigurationError) -> ([UInt8], String)
    {
        let lowered = location.lowercased()
        if lowered.hasPrefix("http://") || lowered.hasPrefix("https://") {
            do { return (try await fetcher.fetch(location).body, location) } catch {
                throw problem("\(location) could not be fetched: \(error)")
            }
        }
        var path = location
        if !path.hasPrefix("/"), let base, !base.lowercased().hasPrefix("http") {
            path = URL(fileURLWithPath: base).deletingLastPathComponent().appendingPathComponent(location).path
        }
        let attributes = try? FileManager.default.attributesOfItem(atPath: path)
        if let size = attributes?[.size] as? Int, size > OpenAPIDocument.maximumBytes {
            throw problem("\(path) is \(size) bytes, more than the \(OpenAPIDocument.maximumBytes) allowed")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw problem("\(path) cannot be read")
        }
        return (Array(data), path)
    }

    /// ```yaml
    /// apis:
    ///   - openapi: notes.openapi.json        # or https://notes.example/openapi.json
    ///     base_url: https://notes.example
    ///     audience: https://notes.example/   # the `aud` its tokens need
    ///     timeout: 5s
    ///     allow_unauthenticated: false
    ///     include: [{ tags: [notes] }]
    ///     exclude: [{ operation_ids: [purge_notes] }, { methods: [DELETE], path: "/admin/*" }]
    ///     rename: { list_notes_notes_get: list-notes }
    /// ```
    private static func parseAPIsFile(_ tree: JSONValue, source: String, context: Context) throws(ConfigurationError)
        -> [Entry]
    {
        guard case .array(let list)? = tree.objectValue?["apis"], !list.isEmpty else {
            throw problem("\(source): apis must be a non-empty list")
        }
        for key in tree.objectValue!.keys where key != "apis" {
            throw problem("\(source) has '\(key)' (expected apis)")
        }
        var entries: [Entry] = []
        for (index, value) in list.enumerated() {
            let place = "\(source): apis[\(index)]"
            guard case .object(let members) = value else { throw problem("\(place) must be an object") }
            let known: Set<String> = [
                "openapi", "base_url", "audience", "timeout", "allow_unauthenticated", "include", "exclude", "rename",
            ]
            if let unknown = members.keys.sorted().first(where: { !known.contains($0) }) {
                throw problem("\(place) has '\(unknown)' (expected \(known.sorted().joined(separator: ", ")))")
            }
            guard let document = members["openapi"]?.stringValue, !document.isEmpty else {
                throw problem("\(place).openapi must name the document (a path or an http(s) URL)")
            }
            guard let baseURL = members["base_url"]?.stringValue, !baseURL.isEmpty else {
                throw problem("\(place).base_url must be the URL its calls go to")
            }
            var entry = Entry(document: document, baseURL: baseURL, audience: nil)
            if let audience = members["audience"] {
                guard let text = audience.stringValue, !text.isEmpty, !text.contains(",") else {
                    throw problem("\(place).audience must be one audience (the aud its tokens need)")
                }
                entry.audience = text
            } else if !Self.sameOrigin(baseURL, context.defaultBaseURL) {
                // Tokens for DOWNSTREAM_AUDIENCE are TodosAPI's: another host could replay them there.
                throw problem(
                    "\(place).audience is required for an API at another origin than API_BASE_URL: without it, that"
                        + " API would receive tokens for DOWNSTREAM_AUDIENCE, which the API at API_BASE_URL accepts")
            }
            if let timeout = members["timeout"] {
                guard let text = timeout.stringValue, let seconds = Settings.seconds(in: text), (0.1...300).contains(seconds)
                else { throw problem("\(place).timeout must be a duration such as 5s or 500ms, at most 300s") }
                entry.timeout = .milliseconds(Int64(seconds * 1000))
            }
            if let flag = members["allow_unauthenticated"] {
                guard let value = flag.boolValue else { throw problem("\(place).allow_unauthenticated must be true or false") }
                entry.selection.allowUnauthenticated = value
            }
            entry.selection.include = try rules(members["include"], at: "\(place).include")
            entry.selection.exclude = try rules(members["exclude"], at: "\(place).exclude")
            if let rename = members["rename"] {
                guard case .object(let names) = rename else { throw problem("\(place).rename must map operationIds to names") }
                for (id, name) in names {
                    guard let name = name.stringValue, OpenAPIToolGenerator.isValidToolName(name) else {
                        throw problem(
                            "\(place).rename.\(id) must be a tool name: 1 to 128 of A-Z, a-z, 0-9, '_', '-' and '.'")
                    }
                    entry.selection.rename[id] = name
                }
            }
            entries.append(entry)
        }
        return entries
    }

    /// Whether two URLs have the same scheme, host and port.
    static func sameOrigin(_ a: String, _ b: String) -> Bool {
        guard let x = KeepAliveHTTPClient.Origin(a), let y = KeepAliveHTTPClient.Origin(b) else { return false }
        return x.secure == y.secure && x.host.lowercased() == y.host.lowercased() && x.port == y.port
    }

    private static func rules(_ value: JSONValue?, at place: String) throws(ConfigurationError)
        -> [OpenAPIToolSelection.Rule]
    {
        guard let value else { return [] }
        guard case .array(let list) = value else { throw problem("\(place) must be a list of rules") }
        var rules: [OpenAPIToolSelection.Rule] = []
        for (index, entry) in list.enumerated() {
            guard case .object(let members) = entry, !members.isEmpty else {
                throw problem("\(place)[\(index)] must be an object with operation_ids, tags, path and/or methods")
            }
            var rule = OpenAPIToolSelection.Rule()
            for (key, value) in members {
                if key == "path" {
                    guard let path = value.stringValue, path.hasPrefix("/") else {
                        throw problem("\(place)[\(index)].path must be a path such as /notes/*")
                    }
                    rule.path = path
                    continue
                }
                guard let list = value.stringArrayValue, !list.isEmpty else {
                    throw problem("\(place)[\(index)].\(key) must be a non-empty list of strings")
                }
                switch key {
                case "operation_ids": rule.operationIDs = Set(list)
                case "tags": rule.tags = Set(list)
                case "methods": rule.methods = Set(list.map { $0.uppercased() })
                default: throw problem("\(place)[\(index)] has '\(key)' (expected operation_ids, tags, path, methods)")
                }
            }
            rules.append(rule)
        }
        return rules
    }
}
