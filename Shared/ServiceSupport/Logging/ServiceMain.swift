import Foundation
import Logging

/// Start-up glue every service shares: logging set-up, and turning a configuration error into the one line the
/// operator needs instead of a stack trace.
public enum ServiceMain {
    /// Bootstraps swift-log once, at `LOG_LEVEL` (`trace` … `critical`, default `info`), writing to standard output.
    public static func bootstrapLogging(level: String?) {
        // Timestamps are local time. Without TZ, glibc looks at /etc/localtime again (a stat call) on every log line;
        // naming it once keeps the same time zone without that cost.
        if getenv("TZ") == nil { setenv("TZ", ":/etc/localtime", 0) }
        let logLevel = level.flatMap { Logger.Level(rawValue: $0.lowercased()) } ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardOutput(label: label)
            handler.logLevel = logLevel
            return handler
        }
    }

    /// Runs `body`; on a ``ConfigurationError`` prints `<service>: <one line>` to standard error and exits with 1,
    /// on any other error prints it and exits with 1.
    public static func run(_ service: String, _ body: () async throws -> Void) async {
        do {
            try await body()
        } catch let error as ConfigurationError {
            FileHandle.standardError.write(Data("\(service): \(error)\n".utf8))
            exit(1)
        } catch {
            FileHandle.standardError.write(Data("\(service) stopped: \(error)\n".utf8))
            exit(1)
        }
    }
}
