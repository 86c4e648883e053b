import Foundation
import Logging

/// Start-up glue every service shares: logging set-up, and turning a configuration error into the one line the
/// operator needs instead of a stack trace.
public enum ServiceMain {
    /// Bootstraps swift-log once: `LOG_LEVEL` (`trace` … `critical`, default `info`) and `LOG_FORMAT` (`text`, the
    /// default, or `json`), to standard output through ``LogOutput`` (buffered below `notice`).
    public static func bootstrapLogging(_ settings: Settings, output: LogOutput = .standardOutput)
        throws(ConfigurationError)
    {
        let levelName = settings.string("LOG_LEVEL", default: "info").lowercased()
        guard let level = Logger.Level(rawValue: levelName) else {
            throw ConfigurationError(
                variable: "LOG_LEVEL", problem: "must be trace, debug, info, notice, warning, error or critical",
                example: "info")
        }
        let formatName = settings.string("LOG_FORMAT", default: "text").lowercased()
        guard let format = LogFormat(rawValue: formatName) else {
            throw ConfigurationError(variable: "LOG_FORMAT", problem: "must be text or json", example: "json")
        }
        output.format = format
        LoggingSystem.bootstrap { label in ServiceLogHandler(label: label, level: level, output: output) }
    }

    /// Runs `body`; on a ``ConfigurationError`` prints `<service>: <one line>` to standard error and exits with 1,
    /// on any other error prints it and exits with 1. First, NIO's event loops are sized by the CPUs the process may
    /// run on (``EventLoopCount``).
    public static func run(_ service: String, _ body: () async throws -> Void) async {
        EventLoopCount.matchCPUAffinity()
        defer { LogOutput.standardOutput.flush() }
        do {
            try await body()
        } catch let error as ConfigurationError {
            LogOutput.standardOutput.flush()
            FileHandle.standardError.write(Data("\(service): \(error)\n".utf8))
            exit(1)
        } catch {
            LogOutput.standardOutput.flush()
            FileHandle.standardError.write(Data("\(service) stopped: \(error)\n".utf8))
            exit(1)
        }
    }
}
