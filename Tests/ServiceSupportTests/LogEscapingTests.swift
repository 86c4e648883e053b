import Foundation
import Logging
import Testing

@testable import ServiceSupport

/// A text log line is one line whatever a value holds: control characters in metadata values, keys and the message are
/// written as escapes, so that a subject with a newline cannot forge a line and a name with an escape sequence cannot
/// drive the terminal that shows the log. JSON lines escape as JSON does, unchanged.
@Suite("Log output: control characters")
struct LogEscapingTests {
    typealias Capture = LogOutputTests.Capture

    static let forged = "alice\n2026-12-01T10:22:33.123Z notice McpGateway.audit: audit.event=grant_revoked user.id=bob"

    /// Whether `text` holds a character a terminal acts on, besides the newline that ends each line.
    func hasUnsafeCharacters(_ text: String) -> Bool {
        text.unicodeScalars.contains { scalar in
            scalar != "\n"
                && (scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value) || scalar.value == 0x2028
                    || scalar.value == 0x2029 || (0x202A...0x202E).contains(scalar.value)
                    || (0x2066...0x2069).contains(scalar.value) || scalar.value == 0x200E || scalar.value == 0x200F)
        }
    }

    func lines(_ capture: Capture) -> [Substring] {
        capture.output.flush()
        return capture.written().split(separator: "\n", omittingEmptySubsequences: false).dropLast()
            .map { $0 }
    }

    @Test func aValueWithANewlineAndAForgedLineIsOneLine() throws {
        let capture = Capture(format: .text)
        capture.logger("McpGateway.audit").notice("audit sign_in", metadata: ["user.id": .string(Self.forged)])
        let lines = lines(capture)
        #expect(lines.count == 1, "\(lines)")
        let line = try #require(lines.first)
        // One quoted value: neither a second line nor a field of its own (audit.event=…) can be read out of it.
        #expect(
            line.contains(
                #"user.id="alice\n2026-12-01T10:22:33.123Z notice McpGateway.audit: audit.event=grant_revoked"#))
        #expect(line.hasSuffix("audit sign_in"))
        #expect(!hasUnsafeCharacters(String(line)))
    }

    @Test(arguments: [
        "\r", "\r\n", "\t", "\u{1B}[2J\u{1B}[H", "\u{7}", "\u{0}", "\u{7F}", "\u{85}", "\u{9B}31m", "\u{2028}",
        "\u{2029}", "\u{202E}", "\u{2066}", "\u{200F}", "\u{8}\u{8}\u{8}",
    ])
    func everyControlCharacterIsEscapedInValuesKeysAndTheMessage(_ control: String) throws {
        let capture = Capture(format: .text)
        var logger = capture.logger("McpGateway")
        logger[metadataKey: "handler.value"] = .string("h" + control + "h")
        logger.warning(
            "message \(control) end",
            metadata: [
                "user.id": .string("auth0|eve" + control + "forged"), "key" + control: "v",
                "list": .array([.string("a" + control), "b"]), "nested": .dictionary(["k": .string(control)]),
            ])
        let lines = lines(capture)
        #expect(lines.count == 1, "\(control.debugDescription): \(lines)")
        let line = String(try #require(lines.first))
        #expect(!hasUnsafeCharacters(line), "\(control.debugDescription): \(line.debugDescription)")
        let escaped = ClaimTextEscape.of(control)
        #expect(line.contains("user.id=auth0|eve" + escaped + "forged"), "\(line.debugDescription)")
        #expect(line.contains(" key" + escaped + "=v"), "\(line.debugDescription)")
        #expect(line.contains("handler.value=h" + escaped + "h"), "\(line.debugDescription)")
        #expect(line.hasSuffix("] message " + escaped + " end"), "\(line.debugDescription)")
    }

    @Test func cleanTextIncludingNonASCIIIsWrittenAsItIs() throws {
        let capture = Capture(format: .text)
        capture.logger("McpGateway").notice(
            "Signed in Renée 日本", metadata: ["user.name": "Zoë 👩‍💻", "user.id": "auth0|x=y \"q\" \\"])
        let line = try #require(lines(capture).first)
        // Quoted, as any value with a space, `=`, `"` or `\`: it reads as one value, not as `y` and `"q"`.
        #expect(line.contains(#"user.id="auth0|x=y \"q\" \\""#))
        #expect(line.contains(#"user.name="Zoë 👩‍💻""#))
        #expect(line.hasSuffix("Signed in Renée 日本"))
    }

    @Test func jsonLinesAreUnchangedAndStillCarryTheExactValue() throws {
        let capture = Capture(format: .json)
        let hostile = Self.forged + "\u{1B}[2J\u{85}\u{2028}\u{202E}"
        capture.logger("McpGateway.audit").notice(
            "audit \(hostile)", metadata: ["user.id": .string(hostile), "key\n": "v"])
        let lines = lines(capture)
        #expect(lines.count == 1)
        let first = try #require(lines.first)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(first.utf8)) as? [String: Any])
        // JSON's own escapes, not ClaimText's: a collector reads back exactly what was logged.
        #expect(object["user.id"] as? String == hostile)
        #expect(object["message"] as? String == "audit \(hostile)")
        #expect(object["key\n"] as? String == "v")
        #expect(!(lines.first ?? "").contains(#"\u{1B}"#))
    }
}

/// The escape ClaimText writes for each character of `text` (the tests' own statement of the format).
enum ClaimTextEscape {
    static func of(_ text: String) -> String {
        text.unicodeScalars.map { scalar -> String in
            switch scalar {
            case "\n": #"\n"#
            case "\r": #"\r"#
            case "\t": #"\t"#
            default:
                scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value) || scalar.value >= 0x200E
                    ? #"\u{"# + String(scalar.value, radix: 16, uppercase: true) + "}" : String(scalar)
            }
        }.joined()
    }
}
