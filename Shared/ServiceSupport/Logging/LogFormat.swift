import Foundation
import JSON
import JWTAuth
import Logging

/// `LOG_FORMAT`: `text` for people, `json` (one object per line) for log collectors.
public enum LogFormat: String, Sendable, CaseIterable {
    case text
    case json

    func append(_ record: LogOutput.Record, to bytes: inout [UInt8]) {
        switch self {
        case .text: appendText(record, to: &bytes)
        case .json: appendJSON(record, to: &bytes)
        }
    }

    /// `2026-12-01T10:22:33.123Z info McpGateway: key=value key="a value" … [source] message`, one line whatever the
    /// values hold: control characters in a value or the message (a subject with a newline, a name with an escape
    /// sequence) are written as escapes (`\n`, `\u{1B}`), so they can neither start a forged line nor drive the
    /// terminal that shows the log; and a value with a space, `=`, `"` or `\` is quoted (`"` and `\` escaped inside), so
    /// that it cannot pass for more fields (`user.id=alice oauth.client_id=admin`).
    private func appendText(_ record: LogOutput.Record, to bytes: inout [UInt8]) {
        LogTimestamp.append(record.time, to: &bytes)
        bytes.append(UInt8(ascii: " "))
        bytes.append(contentsOf: record.level.rawValue.utf8)
        bytes.append(UInt8(ascii: " "))
        bytes.append(contentsOf: record.label.utf8)
        bytes.append(UInt8(ascii: ":"))
        for (key, value) in Self.fields(record) {
            bytes.append(UInt8(ascii: " "))
            Self.appendEscaped(key, to: &bytes)
            bytes.append(UInt8(ascii: "="))
            Self.appendValue(value.description, to: &bytes)
        }
        bytes.append(contentsOf: " [".utf8)
        bytes.append(contentsOf: record.source.utf8)
        bytes.append(contentsOf: "] ".utf8)
        Self.appendEscaped(record.message, to: &bytes)
        bytes.append(UInt8(ascii: "\n"))
    }

    /// `{"timestamp":"…","level":"info","logger":"McpGateway","message":"…","source":"…",<metadata>}`
    private func appendJSON(_ record: LogOutput.Record, to bytes: inout [UInt8]) {
        bytes.append(contentsOf: #"{"timestamp":""#.utf8)
        LogTimestamp.append(record.time, to: &bytes)
        bytes.append(contentsOf: #"","level":""#.utf8)
        bytes.append(contentsOf: record.level.rawValue.utf8)
        bytes.append(contentsOf: #"","logger":"#.utf8)
        JSONValue.writeString(record.label, to: &bytes)
        bytes.append(contentsOf: #","message":"#.utf8)
        JSONValue.writeString(record.message, to: &bytes)
        bytes.append(contentsOf: #","source":"#.utf8)
        JSONValue.writeString(record.source, to: &bytes)
        for (key, value) in Self.fields(record) {
            bytes.append(UInt8(ascii: ","))
            JSONValue.writeString(key, to: &bytes)
            bytes.append(UInt8(ascii: ":"))
            LogMetadataJSON.append(value, to: &bytes)
        }
        bytes.append(contentsOf: "}\n".utf8)
    }

    /// A metadata value: as it is when it is one word of plain characters (what nearly every value is), else quoted.
    private static func appendValue(_ text: String, to bytes: inout [UInt8]) {
        let needsQuotes =
            text.isEmpty
            || text.utf8.contains(where: {
                $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "=") || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\")
            })
        guard needsQuotes else { return appendEscaped(text, to: &bytes) }
        var quoted = ""
        quoted.reserveCapacity(text.utf8.count + 2)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": quoted += "\\\""
            case "\\": quoted += "\\\\"
            default: quoted += ClaimText.isUnsafe(scalar) ? ClaimText.escaped(String(scalar)) : String(scalar)
            }
        }
        bytes.append(UInt8(ascii: "\""))
        bytes.append(contentsOf: quoted.utf8)
        bytes.append(UInt8(ascii: "\""))
    }

    /// `text` as it is when it has nothing to escape (what nearly every line is), else ``ClaimText/escaped(_:)``.
    private static func appendEscaped(_ text: String, to bytes: inout [UInt8]) {
        // ASCII controls are below 0x20 or 0x7F; C1 controls, separators and bidi marks all start with a byte of
        // 0xC2 or more in UTF-8. Anything else is copied as it is.
        if text.utf8.contains(where: { $0 < 0x20 || $0 == 0x7F || $0 >= 0xC2 }), !ClaimText.isSafe(text) {
            bytes.append(contentsOf: ClaimText.escaped(text).utf8)
        } else {
            bytes.append(contentsOf: text.utf8)
        }
    }

    /// The record's metadata, the handler's first and the call's over it, sorted by key. A line has a handful of
    /// fields, so an array searched in turn is cheaper than merging two dictionaries: this runs for every access line.
    private static func fields(_ record: LogOutput.Record) -> [(key: String, value: Logger.MetadataValue)] {
        var fields: [(key: String, value: Logger.MetadataValue)] = []
        fields.reserveCapacity(record.handlerMetadata.count + 2)
        for field in record.handlerMetadata { fields.append(field) }
        for (key, value) in record.fields {
            if let index = fields.firstIndex(where: { $0.key == key }) {
                fields[index].value = value
            } else {
                fields.append((key, value))
            }
        }
        fields.sort { $0.key < $1.key }
        return fields
    }
}

extension LogOutput.Record {
    /// The message as written.
    var message: String {
        switch event {
        case .logged(let message, _): message.description
        case .access(let line): line.message
        }
    }

    /// The record's own metadata, which wins over the handler's.
    var fields: [(key: String, value: Logger.MetadataValue)] {
        switch event {
        case .logged(_, let metadata): metadata.map { Array($0) } ?? []
        case .access(let line): line.fields
        }
    }
}

/// Log metadata as JSON, strings written by the shared JSON writer.
enum LogMetadataJSON {
    static func append(_ value: Logger.MetadataValue, to bytes: inout [UInt8]) {
        switch value {
        case .string(let string): JSONValue.writeString(string, to: &bytes)
        case .stringConvertible(let convertible): JSONValue.writeString(convertible.description, to: &bytes)
        case .array(let values):
            bytes.append(UInt8(ascii: "["))
            for (index, value) in values.enumerated() {
                if index > 0 { bytes.append(UInt8(ascii: ",")) }
                append(value, to: &bytes)
            }
            bytes.append(UInt8(ascii: "]"))
        case .dictionary(let values):
            bytes.append(UInt8(ascii: "{"))
            for (index, (key, value)) in values.sorted(by: { $0.key < $1.key }).enumerated() {
                if index > 0 { bytes.append(UInt8(ascii: ",")) }
                JSONValue.writeString(key, to: &bytes)
                bytes.append(UInt8(ascii: ":"))
                append(value, to: &bytes)
            }
            bytes.append(UInt8(ascii: "}"))
        }
    }
}
