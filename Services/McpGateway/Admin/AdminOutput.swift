import ArgumentParser
import Foundation
import JWTAuth
import Logging
import ServiceSupport

/// Options every listing shares.
struct OutputOptions: ParsableArguments {
    @Flag(help: "Print JSON (one document) instead of a table.") var json = false
}

/// Writes `value` as pretty JSON with sorted keys and ISO 8601 dates.
func printJSON(_ value: some Encodable) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    encoder.dateEncodingStrategy = .iso8601
    let text = String(decoding: try encoder.encode(value), as: UTF8.self)
    // JSONEncoder escapes U+0000 to U+001F only: the other characters a terminal acts on (DEL, C1 controls such as
    // CSI, line separators, bidi overrides) are written as \u escapes too, which read back as the same JSON.
    print(jsonEscapingUnsafeCharacters(text == "[\n\n]" ? "[]" : text))
}

/// `json` with each character of ``ClaimText/isUnsafe(_:)`` that it holds raw written as a `\uXXXX` escape.
func jsonEscapingUnsafeCharacters(_ json: String) -> String {
    guard !ClaimText.isSafe(json.replacingOccurrences(of: "\n", with: "")) else { return json }
    var result = ""
    for scalar in json.unicodeScalars {
        if scalar != "\n", ClaimText.isUnsafe(scalar) {
            let hex = String(scalar.value, radix: 16, uppercase: true)
            result += "\\u" + String(repeating: "0", count: max(0, 4 - hex.count)) + hex
        } else {
            result.unicodeScalars.append(scalar)
        }
    }
    return result
}

/// Writes one line for a person at a terminal. What the database holds came from outside (a client's name, a user's
/// subject or email): control characters in it are written as escapes, so they cannot move the cursor, recolour the
/// terminal or forge lines (ClaimText).
func say(_ line: String) {
    print(ClaimText.escaped(line))
}

/// A plain text table: one header line, columns padded to their widest cell.
func printTable(_ header: [String], _ rows: [[String]]) {
    let rows = rows.map { $0.map(ClaimText.escaped) }
    let widths = header.indices.map { column in
        ([header] + rows).map { $0[column].count }.max() ?? 0
    }
    for row in [header] + rows {
        let cells = row.enumerated().map { index, cell in
            index == row.count - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
        }
        say(cells.joined(separator: "  "))
    }
}

extension Date {
    /// `2026-12-01T10:00:00Z`.
    var adminText: String { formatted(.iso8601) }
}
