import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Testing

@testable import ServiceSupport

@Suite("Log output")
struct LogOutputTests {
    /// A log output writing into a pipe, and a way to read what reached it.
    final class Capture: @unchecked Sendable {
        let output: LogOutput
        private let reader: FileHandle

        init(format: LogFormat) {
            let pipe = Pipe()
            output = LogOutput(descriptor: pipe.fileHandleForWriting.fileDescriptor)
            output.format = format
            reader = pipe.fileHandleForReading
            writer = pipe.fileHandleForWriting
        }

        private let writer: FileHandle

        func logger(_ label: String = "Test", level: Logger.Level = .trace) -> Logger {
            Logger(label: label) { label in ServiceLogHandler(label: label, level: level, output: self.output) }
        }

        /// What has been written, without waiting for the background writer.
        func written() -> String {
            var result = Data()
            let descriptor = reader.fileDescriptor
            let flags = fcntl(descriptor, F_GETFL)
            _ = fcntl(descriptor, F_SETFL, flags | O_NONBLOCK)
            var buffer = [UInt8](repeating: 0, count: 65_536)
            while true {
                let count = read(descriptor, &buffer, buffer.count)
                if count <= 0 { break }
                result.append(contentsOf: buffer[0..<count])
            }
            return String(decoding: result, as: UTF8.self)
        }
    }

    @Test func noticeAndAboveAreWrittenBeforeLogReturnsAfterWhatCameBefore() {
        let capture = Capture(format: .text)
        let logger = capture.logger()
        logger.info("first, buffered")
        logger.error("second, at once")
        let lines = capture.written().split(separator: "\n")
        #expect(lines.count == 2)
        #expect(lines.first?.hasSuffix("first, buffered") == true)
        #expect(lines.last?.contains(" error Test:") == true)
    }

    @Test func bufferedLinesArriveWithinMilliseconds() async throws {
        let capture = Capture(format: .text)
        capture.logger().info("in a batch")
        let deadline = ContinuousClock.now + .seconds(2)
        var text = ""
        while !text.contains("in a batch"), ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(5))
            text += capture.written()
        }
        #expect(text.contains("in a batch"))
    }

    @Test func jsonLinesCarryMetadataAndEscapeWhatTheyMust() throws {
        let capture = Capture(format: .json)
        var logger = capture.logger("McpGateway")
        logger[metadataKey: "hb.request.id"] = "r-1"
        logger.notice(
            "quote \" backslash \\ newline \n bell \u{7}",
            metadata: ["user.id": "auth0|alice", "list": ["a", "b"], "nested": ["k": "v"]])
        let line = try #require(capture.written().split(separator: "\n").first)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(object["message"] as? String == "quote \" backslash \\ newline \n bell \u{7}")
        #expect(object["level"] as? String == "notice" && object["logger"] as? String == "McpGateway")
        #expect(object["hb.request.id"] as? String == "r-1" && object["user.id"] as? String == "auth0|alice")
        #expect(object["list"] as? [String] == ["a", "b"])
        #expect((object["nested"] as? [String: String]) == ["k": "v"])
        let timestamp = try #require(object["timestamp"] as? String)
        #expect(timestamp.count == 24 && timestamp.hasSuffix("Z"))
        #expect(
            try Date(timestamp, strategy: .iso8601.year().month().day().time(includingFractionalSeconds: true))
                .timeIntervalSinceNow.magnitude < 60)
    }

    @Test func levelsBelowTheHandlersAreDropped() {
        let capture = Capture(format: .text)
        let logger = capture.logger(level: .warning)
        logger.notice("dropped")
        logger.warning("kept")
        capture.output.flush()
        let text = capture.written()
        #expect(!text.contains("dropped") && text.contains("kept"))
    }

    @Test func badSettingsAreOneLineErrors() {
        #expect(throws: ConfigurationError.self) {
            try ServiceMain.bootstrapLogging(Settings(environment: ["LOG_FORMAT": "xml"]))
        }
        #expect(throws: ConfigurationError.self) {
            try ServiceMain.bootstrapLogging(Settings(environment: ["LOG_LEVEL": "loud"]))
        }
    }
}

@Suite("Readiness and metrics routes")
struct ReadinessAndMetricsTests {
    func app(checks: [ReadinessCheck], token: String? = nil) -> some ApplicationProtocol {
        let router = Router()
        router.add(middleware: AccessLogMiddleware())
        Readiness.addRoute(to: router, checks: checks)
        ServiceMetrics.addRoute(to: router, token: token)
        router.get("hello") { _, _ in "hi" }
        return Application(router: router)
    }

    @Test func readyWhenEveryCheckPasses() async throws {
        try await app(checks: [ReadinessCheck("database") { nil }, ReadinessCheck("keys") { nil }]).test(.router) {
            client in
            try await client.execute(uri: "/ready", method: .get) { response in
                #expect(response.status == .ok)
                #expect(String(buffer: response.body) == #"{"status":"ready","checks":{"database":"ok","keys":"ok"}}"#)
                #expect(response.headers[.retryAfter] == nil)
            }
        }
    }

    @Test func notReadyNamesWhatFailedAndDoesNotHang() async throws {
        let checks = [
            ReadinessCheck("database") { "the database does not answer" },
            ReadinessCheck("keys") {
                try? await Task.sleep(for: .seconds(30))
                return nil
            },
        ]
        try await app(checks: checks).test(.router) { client in
            // The answer, not the test app's start and shutdown, which a loaded machine slows.
            let started = ContinuousClock.now
            try await client.execute(uri: "/ready", method: .get) { response in
                #expect(response.status == .serviceUnavailable)
                #expect(response.headers[.retryAfter] == "5")
                let body = try JSONDecoder().decode(
                    [String: [String: String]].self,
                    from: Data(
                        String(buffer: response.body).replacingOccurrences(of: #""status":"not_ready","#, with: "").utf8
                    ))
                #expect(body["checks"]?["database"] == "the database does not answer")
                #expect(body["checks"]?["keys"] == "no answer within 2 s")
            }
            // Well before the stuck check would end (30 s), even on a loaded machine.
            #expect(ContinuousClock.now - started < .seconds(25))
        }
    }

    @Test func metricsNeedTheTokenWhenOneIsSet() async throws {
        ServiceMetrics.bootstrap()
        let token = "0123456789abcdef0123"
        try await app(checks: [], token: token).test(.router) { client in
            try await client.execute(uri: "/hello", method: .get) { _ in }
            try await client.execute(uri: "/metrics", method: .get) { response in
                #expect(response.status == .unauthorized)
                #expect(response.headers[.wwwAuthenticate] == #"Bearer realm="metrics""#)
            }
            try await client.execute(
                uri: "/metrics", method: .get, headers: [.authorization: "Bearer \(token)x"]
            ) { response in #expect(response.status == .unauthorized) }
            try await client.execute(uri: "/metrics", method: .get, headers: [.authorization: "Bearer \(token)"]) {
                response in
                #expect(response.status == .ok)
                #expect(response.headers[.contentType]?.hasPrefix("text/plain; version=0.0.4") == true)
            }
        }
        #expect(throws: ConfigurationError.self) {
            try Settings(environment: ["METRICS_TOKEN": "short"]).metricsToken()
        }
        #expect(throws: ConfigurationError.self) {
            try Settings(environment: ["METRICS_TOKEN": "has spaces in it, sixteen+"]).metricsToken()
        }
        #expect(
            try Settings(environment: ["METRICS_TOKEN": "abc+/def-._~0123=="]).metricsToken() == "abc+/def-._~0123==")
        #expect(try Settings(environment: [:]).metricsToken() == nil)
    }
}

@Suite("Access lines")
struct AccessLineTests {
    typealias Capture = LogOutputTests.Capture

    /// A swift-log handler other than the services' own: it keeps what it is given.
    final class Recorder: LogHandler, @unchecked Sendable {
        var logLevel: Logger.Level = .info
        var metadata: Logger.Metadata = [:]
        private let lock = NSLock()
        private var _events: [(Logger.Level, String, Logger.Metadata)] = []
        var events: [(Logger.Level, String, Logger.Metadata)] { lock.withLock { _events } }
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(event: LogEvent) {
            let merged = metadata.merging(event.metadata ?? [:]) { _, new in new }
            lock.withLock { _events.append((event.level, event.message.description, merged)) }
        }
    }

    func app(logger: Logger) -> some ApplicationProtocol {
        let router = Router()
        router.add(middleware: AccessLogMiddleware())
        router.add(middleware: ErrorRenderingMiddleware())
        router.get("hello") { _, _ in "hi" }
        return Application(router: router, logger: logger)
    }

    func request(_ uri: String, to app: some ApplicationProtocol) async throws -> (HTTPResponse.Status, String?) {
        try await app.test(.router) { client in
            try await client.execute(uri: uri, method: .get) { response in
                (response.status, response.headers[.requestID])
            }
        }
    }

    @Test func aLinePerRequestWithoutTheQueryString() async throws {
        let capture = Capture(format: .text)
        let (status, requestID) = try await request("/hello?code=secret", to: app(logger: capture.logger("Svc")))
        #expect(status == .ok)
        capture.output.flush()
        let line = try #require(capture.written().split(separator: "\n").last.map(String.init))
        let id = try #require(requestID)
        // `<timestamp> info Svc: hb.request.id=<id> http.duration_ms=<ms> http.status=200 [ServiceSupport] GET /hello 200`
        let pattern = try Regex(
            #"^\S+Z info Svc: hb\.request\.id=(\S+) http\.duration_ms=(\d+\.\d\d) http\.status=200 \[ServiceSupport\] GET /hello 200$"#
        )
        let match = try #require(line.wholeMatch(of: pattern), "\(line)")
        #expect(match.output[1].substring.map(String.init) == id)
        #expect(!line.contains("secret"))
    }

    @Test func jsonLinesHaveTheSameFieldsAndErrorsTheirStatus() async throws {
        let capture = Capture(format: .json)
        let (status, _) = try await request("/nowhere", to: app(logger: capture.logger("Svc")))
        #expect(status == .notFound)
        capture.output.flush()
        let line = try #require(capture.written().split(separator: "\n").last)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(object["message"] as? String == "GET /nowhere 404")
        #expect(object["http.status"] as? String == "404" && object["level"] as? String == "info")
        #expect((object["http.duration_ms"] as? String)?.wholeMatch(of: /\d+\.\d\d/) != nil)
        #expect(object["source"] as? String == "ServiceSupport" && object["hb.request.id"] is String)
    }

    @Test func noLineBelowInfo() async throws {
        let capture = Capture(format: .text)
        _ = try await request("/hello", to: app(logger: capture.logger("Svc", level: .notice)))
        capture.output.flush()
        #expect(capture.written().isEmpty)
    }

    @Test func anotherHandlerGetsTheSameMessageAndMetadata() async throws {
        let recorder = Recorder()
        let (status, requestID) = try await request(
            "/hello?x=1", to: app(logger: Logger(label: "Svc") { _ in recorder }))
        #expect(status == .ok)
        let (level, message, metadata) = try #require(recorder.events.last)
        #expect(level == .info && message == "GET /hello 200")
        #expect(metadata["http.status"]?.description == "200")
        #expect(metadata["http.duration_ms"]?.description.wholeMatch(of: /\d+\.\d\d/) != nil)
        #expect(metadata["hb.request.id"]?.description == requestID)
    }

    @Test func durationsAreMillisecondsWithTwoDecimals() {
        func duration(_ microseconds: Int64) -> String? {
            AccessLine(method: "GET", path: "/", status: 200, microseconds: microseconds).metadata["http.duration_ms"]?
                .description
        }
        #expect(duration(0) == "0.00")
        #expect(duration(4) == "0.00")
        #expect(duration(5) == "0.01")
        #expect(duration(1_234) == "1.23")
        #expect(duration(99_995) == "100.00")
        #expect(duration(12_345_678) == "12345.68")
    }
}
