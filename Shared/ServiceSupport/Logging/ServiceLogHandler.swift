import Foundation
import Logging

/// A swift-log handler that hands records to a ``LogOutput``.
public struct ServiceLogHandler: LogHandler {
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    private let label: String
    private let output: LogOutput

    public init(label: String, level: Logger.Level, output: LogOutput = .standardOutput) {
        self.label = label
        self.logLevel = level
        self.output = output
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(
        level: Logger.Level, message: Logger.Message, metadata: Logger.Metadata?, source: String, file: String,
        function: String, line: UInt
    ) {
        let time = Date().timeIntervalSince1970
        var handlerMetadata = self.metadata
        if let provided = metadataProvider?.get(), !provided.isEmpty {
            handlerMetadata.merge(provided) { _, new in new }
        }
        output.append(
            LogOutput.Record(
                time: time, level: level, label: label, message: message, handlerMetadata: handlerMetadata,
                metadata: metadata, source: source))
    }
}
