import Foundation
import NIOSSL
import PostgresNIO
import ServiceSupport

/// Where the gateway's authorization server keeps its state.
///
/// - `GATEWAY_DATABASE_URL=postgres://user:password@host:5432/database`: PostgreSQL, for several instances sharing one
///   database (libpq's URL form; `sslmode` and `sslrootcert` are understood, a Unix socket directory is given as
///   `?host=/var/run/postgresql`).
/// - Otherwise `GATEWAY_DATABASE` (default `.data/gateway.sqlite`): one SQLite file, for a single instance.
enum DatabaseLocation: Sendable, Equatable {
    case sqlite(path: String)
    case postgres(PostgresLocation)

    static func load(from settings: Settings) throws(ConfigurationError) -> DatabaseLocation {
        guard let url = settings.string("GATEWAY_DATABASE_URL"), !url.isEmpty else {
            return .sqlite(path: settings.string("GATEWAY_DATABASE", default: ".data/gateway.sqlite"))
        }
        var location = try PostgresLocation(url: url)
        // One connection is held by the listener for other instances' changes: at least one more serves requests.
        location.maximumConnections = try settings.integer("GATEWAY_DATABASE_MAX_CONNECTIONS", default: 10, in: 2...500)
        return .postgres(location)
    }

    /// How logs name it: the SQLite path, or the PostgreSQL URL without its password.
    var displayName: String {
        switch self {
        case .sqlite(let path): "SQLite \(path)"
        case .postgres(let location): "PostgreSQL \(location.displayName)"
        }
    }
}

/// A PostgreSQL server and database, parsed from a `postgres://` URL.
struct PostgresLocation: Sendable, Equatable {
    enum TLSMode: String, Sendable, Equatable {
        /// Plain TCP.
        case disable
        /// TLS when the server offers it, without verifying its certificate (libpq's default).
        case prefer
        /// TLS, without verifying the certificate (as libpq's `require`).
        case require
        /// TLS, the certificate verified against the system's or `sslrootcert`'s authorities and the host name.
        case verifyFull = "verify-full"
    }

    var host: String
    var port: Int
    var unixSocketPath: String?
    var username: String
    var password: String?
    var database: String?
    var tls: TLSMode
    var rootCertificatePath: String?
    var maximumConnections = 10
    /// `application_name`, as `pg_stat_activity` shows it.
    var applicationName = "McpGateway"
    /// `connect_timeout`, in seconds.
    var connectTimeout = 5
    /// Whether the server is on this machine (loopback or a Unix socket).
    var isLocal: Bool

    /// Whether what the gateway sends (sealed tokens, digests, its database password) could cross a network in the
    /// clear: an explicit `sslmode=disable` or `prefer` to another machine, for a private network an operator trusts.
    var mayBeUnencrypted: Bool { !isLocal && (tls == .disable || tls == .prefer) }

    /// Parses `postgres://` or `postgresql://` URLs. Without `sslmode`, a server on loopback or a Unix socket is
    /// reached with `prefer`, any other with `verify-full`: nothing crosses a network unencrypted unless the URL says
    /// `sslmode=disable` (a private network, such as compose's), which the gateway logs as a warning.
    init(url text: String) throws(ConfigurationError) {
        let example = "postgres://gateway:secret@db.internal:5432/gateway?sslmode=verify-full"
        func invalid(_ problem: String) -> ConfigurationError {
            ConfigurationError(variable: "GATEWAY_DATABASE_URL", problem: problem, example: example)
        }
        guard let components = URLComponents(string: text), let scheme = components.scheme?.lowercased(),
            scheme == "postgres" || scheme == "postgresql"
        else { throw invalid("must be a postgres:// URL") }
        var query: [String: String] = [:]
        for item in components.queryItems ?? [] { query[item.name] = item.value ?? "" }
        let known: Set = ["sslmode", "sslrootcert", "host", "application_name", "connect_timeout"]
        applicationName = query["application_name"].flatMap { $0.isEmpty ? nil : $0 } ?? "McpGateway"
        if let timeout = query["connect_timeout"] {
            guard let seconds = Int(timeout), (1...300).contains(seconds) else {
                throw invalid("has a connect_timeout that is not 1 to 300 seconds")
            }
            connectTimeout = seconds
        }
        if let unknown = query.keys.sorted().first(where: { !known.contains($0) }) {
            throw invalid("has a parameter this gateway does not understand: \(unknown)")
        }
        if let socket = query["host"], socket.hasPrefix("/") {
            unixSocketPath =
                socket.hasSuffix(".s.PGSQL.\(components.port ?? 5432)")
                ? socket : socket + "/.s.PGSQL.\(components.port ?? 5432)"
        } else if let host = query["host"] {
            throw invalid("may name only a Unix socket directory in ?host= (got \(host))")
        }
        host = components.host.flatMap { $0.isEmpty ? nil : $0 } ?? "localhost"
        port = components.port ?? 5432
        // URLComponents' `user`, `password` and `path` are already percent-decoded: decoded again, `%2541` in a password
        // would become `A`.
        guard let user = components.user, !user.isEmpty else {
            throw invalid("must name the user (postgres://USER:PASSWORD@HOST/DATABASE)")
        }
        username = user
        password = components.password
        let path = components.path.hasPrefix("/") ? String(components.path.dropFirst()) : components.path
        database = path.isEmpty ? nil : path
        rootCertificatePath = query["sslrootcert"]
        let local = unixSocketPath != nil || RedirectURI.isLoopback(host: host)
        if let mode = query["sslmode"] {
            switch mode {
            case "disable", "prefer", "require", "verify-full": tls = TLSMode(rawValue: mode)!
            case "allow": tls = .prefer
            case "verify-ca": tls = .verifyFull
            default: throw invalid("has an unknown sslmode \(mode) (disable, prefer, require or verify-full)")
            }
        } else {
            tls = local ? .prefer : .verifyFull
        }
        isLocal = local
    }

    /// The URL without its password.
    var displayName: String {
        let place = unixSocketPath ?? "\(host):\(port)"
        return "\(username)@\(place)/\(database ?? username)"
    }

    /// The TLS settings `sslmode` and `sslrootcert` stand for: `nil` for `disable`, else the configuration and
    /// whether TLS is required.
    private func tlsSettings() -> (configuration: TLSConfiguration, required: Bool)? {
        var tlsConfiguration = TLSConfiguration.makeClientConfiguration()
        if let rootCertificatePath {
            tlsConfiguration.trustRoots = .file(rootCertificatePath)
        }
        switch tls {
        case .disable: return nil
        case .prefer:
            tlsConfiguration.certificateVerification = .none
            return (tlsConfiguration, false)
        case .require:
            // As libpq: with a CA given, `require` checks the certificate against it (but not the host name).
            tlsConfiguration.certificateVerification = rootCertificatePath == nil ? .none : .noHostnameVerification
            return (tlsConfiguration, true)
        case .verifyFull: return (tlsConfiguration, true)
        }
    }

    /// The configuration of one connection of its own, outside the pool: the one that listens for other instances'
    /// changes.
    func connectionConfiguration() throws -> PostgresConnection.Configuration {
        var configuration: PostgresConnection.Configuration
        if let unixSocketPath {
            configuration = .init(
                unixSocketPath: unixSocketPath, username: username, password: password, database: database)
        } else {
            let tls: PostgresConnection.Configuration.TLS
            if let settings = tlsSettings() {
                let context = try NIOSSLContext(configuration: settings.configuration)
                tls = settings.required ? .require(context) : .prefer(context)
            } else {
                tls = .disable
            }
            configuration = .init(
                host: host, port: port, username: username, password: password, database: database, tls: tls)
        }
        configuration.options.connectTimeout = .seconds(Int64(connectTimeout))
        configuration.options.additionalStartupParameters = [("application_name", applicationName)]
        return configuration
    }

    /// PostgresNIO's client configuration: the pool of ``maximumConnections`` less the one that listens, of which one
    /// is kept open and the others are opened on demand.
    ///
    /// Why a minimum of one, when a pool that kept all its connections would be cheaper (PostgresNIO gives every
    /// connection above the minimum an idle timer each time it is handed back, about 8% of the gateway's CPU time per
    /// refresh grant): PostgresNIO 1.33.2 traps (`precondition(minimum <= active)` in
    /// `createNewDemandConnectionIfPossible`) when a request finds no idle connection while the pool holds fewer
    /// connections than its minimum. After failed connection attempts it keeps only the one it retries, so any minimum
    /// above one would crash the gateway at the first busy moment after a database outage.
    func clientConfiguration() throws -> PostgresClient.Configuration {
        var configuration: PostgresClient.Configuration
        if let unixSocketPath {
            configuration = .init(
                unixSocketPath: unixSocketPath, username: username, password: password, database: database)
        } else {
            let tls: PostgresClient.Configuration.TLS
            if let settings = tlsSettings() {
                tls = settings.required ? .require(settings.configuration) : .prefer(settings.configuration)
            } else {
                tls = .disable
            }
            configuration = .init(
                host: host, port: port, username: username, password: password, database: database, tls: tls)
        }
        configuration.options.maximumConnections = max(1, maximumConnections - 1)
        configuration.options.minimumConnections = 1
        configuration.options.connectTimeout = .seconds(Int64(connectTimeout))
        configuration.options.additionalStartupParameters = [("application_name", applicationName)]
        return configuration
    }
}
