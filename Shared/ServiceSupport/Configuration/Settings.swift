import Foundation

/// The settings of a service: environment variables first, then a dotenv file (`.dev.vars` in the working directory),
/// then defaults. Every accessor that can fail throws a ``ConfigurationError`` naming the variable and an example.
public struct Settings: Sendable {
    private let environment: [String: String]
    private let file: [String: String]

    /// The dotenv file read when none is named: `.dev.vars`, as the Cloudflare demos use.
    public static let defaultFile = ".dev.vars"

    /// Creates settings from explicit values (tests use this).
    public init(environment: [String: String], file: [String: String] = [:]) {
        self.environment = environment
        self.file = file
    }

    /// Reads the process environment and the dotenv file at `path` (missing file: no values). The file can be moved
    /// with the `DEV_VARS_FILE` variable.
    public static func load(
        processEnvironment: [String: String] = ProcessInfo.processInfo.environment,
        defaultPath: String = defaultFile
    ) throws -> Settings {
        let path = processEnvironment["DEV_VARS_FILE"] ?? defaultPath
        do {
            return Settings(environment: processEnvironment, file: try DotEnvFile.load(path: path))
        } catch {
            throw ConfigurationError(
                variable: "DEV_VARS_FILE", problem: "points to an unreadable file \(path): \(error)",
                example: ".dev.vars")
        }
    }

    /// The value of `name`, if set and not blank.
    public func string(_ name: String) -> String? {
        let value = (environment[name] ?? file[name])?.trimmingCharacters(in: .whitespaces)
        return value?.isEmpty == false ? value : nil
    }

    /// The value of `name`, or `defaultValue`.
    public func string(_ name: String, default defaultValue: String) -> String {
        string(name) ?? defaultValue
    }

    /// The value of `name`; a ``ConfigurationError`` when it is not set.
    public func required(_ name: String, example: String) throws(ConfigurationError) -> String {
        guard let value = string(name) else {
            throw ConfigurationError(variable: name, problem: "is missing", example: example)
        }
        return value
    }

    /// A secret of at least 32 characters (256 bits of base64), or `nil` when not set; one that is set but shorter is
    /// an error, never silently weak.
    public func secret(_ name: String) throws(ConfigurationError) -> String? {
        guard let value = string(name), !value.isEmpty else { return nil }
        guard value.utf8.count >= 32 else {
            throw ConfigurationError(
                variable: name, problem: "must be at least 32 characters of random data",
                example: "$(openssl rand -base64 32)")
        }
        return value
    }

    /// A required secret of at least 32 characters.
    public func requiredSecret(_ name: String) throws(ConfigurationError) -> String {
        guard let value = try secret(name) else {
            throw ConfigurationError(variable: name, problem: "is missing", example: "$(openssl rand -base64 32)")
        }
        return value
    }

    /// An integer in `range`, or `defaultValue` when not set.
    public func integer(_ name: String, default defaultValue: Int, in range: ClosedRange<Int>)
        throws(ConfigurationError) -> Int
    {
        guard let text = string(name) else { return defaultValue }
        guard let value = Int(text), range.contains(value) else {
            throw ConfigurationError(
                variable: name, problem: "must be a whole number from \(range.lowerBound) to \(range.upperBound)",
                example: "\(defaultValue)")
        }
        return value
    }

    /// A yes/no setting: `true`, `false`, `1`, `0`, `yes`, `no`, `on` or `off` (any case), or `defaultValue` when not
    /// set.
    public func boolean(_ name: String, default defaultValue: Bool) throws(ConfigurationError) -> Bool {
        guard let text = string(name) else { return defaultValue }
        switch text.lowercased() {
        case "true", "1", "yes", "on": return true
        case "false", "0", "no", "off": return false
        default:
            throw ConfigurationError(
                variable: name, problem: "must be true or false", example: defaultValue ? "true" : "false")
        }
    }

    /// A duration in seconds (`3600`, `2.5`) or with a unit (`500ms`, `90s`, `15m`, `1h`, `30d`), or `defaultValue` when
    /// not set.
    public func duration(_ name: String, default defaultValue: TimeInterval, in range: ClosedRange<TimeInterval>)
        throws(ConfigurationError) -> TimeInterval
    {
        guard let text = string(name) else { return defaultValue }
        guard let value = Self.seconds(in: text), range.contains(value) else {
            throw ConfigurationError(
                variable: name,
                problem: "must be a duration from \(Self.seconds(range.lowerBound)) to \(Self.seconds(range.upperBound))",
                example: "\(Int(defaultValue))")
        }
        return value
    }

    /// The seconds a duration written as settings write them means (`3600`, `2.5`, `500ms`, `90s`, `15m`, `1h`, `30d`);
    /// `nil` for anything else. Files of settings (an APIs file's `timeout`) read durations the same way.
    public static func seconds(in text: String) -> TimeInterval? {
        let units: [Character: TimeInterval] = ["s": 1, "m": 60, "h": 3600, "d": 86_400]
        var number = Substring(text)
        var unit: TimeInterval = 1
        if text.hasSuffix("ms") {
            number = number.dropLast(2)
            unit = 0.001
        } else if let last = text.last, let multiplier = units[last] {
            number = number.dropLast()
            unit = multiplier
        }
        guard let value = Double(number).map({ $0 * unit }), value.isFinite else { return nil }
        return value
    }

    /// `0.5s`, `60s`: a bound of a duration setting, as its error message says it.
    private static func seconds(_ value: TimeInterval) -> String {
        value == value.rounded() ? "\(Int(value))s" : "\(value)s"
    }

    /// A comma-separated list (blank items dropped), or `defaultValue` when not set.
    public func list(_ name: String, default defaultValue: [String]) -> [String] {
        guard let text = string(name) else { return defaultValue }
        return text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    /// An absolute `http` or `https` URL, or `defaultValue` when not set.
    public func url(_ name: String, default defaultValue: String? = nil, example: String) throws(ConfigurationError)
        -> String
    {
        guard let text = string(name) ?? defaultValue else {
            throw ConfigurationError(variable: name, problem: "is missing", example: example)
        }
        guard let url = URL(string: text), let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https",
            url.host?.isEmpty == false
        else {
            throw ConfigurationError(variable: name, problem: "must be an http(s) URL", example: example)
        }
        return text
    }

    /// The first of several names for one setting that is set, with its name (for example `OIDC_CLIENT_ID`, then
    /// `AUTH0_CLIENT_ID`). Two of them set to different values is an error: the service would otherwise pick one
    /// silently.
    public func oneOf(_ names: [String]) throws(ConfigurationError) -> (name: String, value: String)? {
        let set = names.compactMap { name in string(name).map { (name: name, value: $0) } }
        guard let first = set.first else { return nil }
        if let conflict = set.first(where: { $0.value != first.value }) {
            throw ConfigurationError(
                variable: conflict.name, problem: "disagrees with \(first.name); set only one of them",
                example: first.value)
        }
        return first
    }

    /// ``oneOf(_:)`` for a setting that must be present; the error names the first name.
    public func requiredOneOf(_ names: [String], example: String) throws(ConfigurationError) -> (
        name: String, value: String
    ) {
        guard let found = try oneOf(names) else {
            let others = names.dropFirst().joined(separator: " or ")
            throw ConfigurationError(
                variable: names[0], problem: others.isEmpty ? "is missing" : "is missing (or set \(others))",
                example: example)
        }
        return found
    }

    /// ``url(_:default:example:)`` for the first of several names that is set.
    public func urlOneOf(_ names: [String], example: String) throws(ConfigurationError) -> String? {
        guard let found = try oneOf(names) else { return nil }
        return try url(found.name, example: example)
    }
}
