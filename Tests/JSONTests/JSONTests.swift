import Foundation
import Testing

@testable import JSON

@Suite("JSON parser and writer")
struct JSONParserTests {
    func parse(_ text: String) throws -> JSONValue { try JSONValue(parsing: Array(text.utf8)) }

    @Test(arguments: [
        #"{"a":1,"b":[true,false,null],"c":{"d":"e"},"f":-1.5e3,"g":"\u00e9\ud83d\ude00\n\t\"\\\/"}"#,
        "[]", "{}", "0", "-0", "123456789012345678", "1.0", "1E+2", "\"\"", " \n\t[ 1 , 2 ]\r\n ",
        "9223372036854775807",
        "9223372036854775808", "0.1", "1e-7", #""plain ascii""#, #"["ü","日本","\u0041"]"#,
    ])
    func agreesWithJSONDecoder(text: String) throws {
        let reference = try JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
        #expect(Self.same(reference, try parse(text)))
    }

    /// Equal, counting `1500` and `1.5e3` as the same number.
    static func same(_ lhs: JSONValue, _ rhs: JSONValue) -> Bool {
        switch (lhs, rhs) {
        case (.array(let left), .array(let right)):
            return left.count == right.count && zip(left, right).allSatisfy { same($0, $1) }
        case (.object(let left), .object(let right)):
            return left.keys == right.keys
                && left.allSatisfy { key, value in right[key].map { same(value, $0) } ?? false }
        default:
            if let left = lhs.doubleValue, let right = rhs.doubleValue { return left == right }
            return lhs == rhs
        }
    }

    @Test(arguments: [
        "", " ", "{", "[1,]", "{\"a\":1,}", "[1 2]", "{\"a\" 1}", "{a:1}", "'a'", "01", "-", "1.", ".5", "1e", "+1",
        "NaN", "Infinity", "tru", "nul", "[1]x", "\"unterminated", "\"bad \\x escape\"", "\"\\u12\"", "\"\\ud800\"",
        "\"\\udc00\"", "\"\\ud800\\u0041\"", "\"tab\there\"", "1e400", "/* comment */ 1", "[1] [2]",
    ])
    func refusesWhatJSONDoesNotAllow(text: String) {
        #expect(throws: (any Error).self, "\(text)") { try parse(text) }
    }

    @Test func refusesInvalidUTF8() {
        #expect(throws: (any Error).self) { try JSONValue(parsing: [0x22, 0xFF, 0xFE, 0x22]) }
        #expect(throws: (any Error).self) { try JSONValue(parsing: [0x22, 0x5C, 0x6E, 0xC3, 0x22]) }
    }

    @Test func limitsNesting() throws {
        let deep = String(repeating: "[", count: 600) + String(repeating: "]", count: 600)
        #expect(throws: (any Error).self) { try parse(deep) }
        let fine = String(repeating: "[", count: 500) + String(repeating: "]", count: 500)
        _ = try parse(fine)
    }

    @Test func duplicateMembersKeepTheLast() throws {
        #expect(try parse(#"{"a":1,"a":2}"#) == ["a": 2])
    }

    @Test func repeatedNamesAreReportedAtAnyDepth() throws {
        func unique(_ text: String) throws -> Bool { try JSONParser.parse(Array(text.utf8)).namesAreUnique }
        #expect(try unique(#"{"a":{"b":1,"c":{"d":2,"b":3}},"e":[{"f":3},{"f":4}],"b":5}"#))
        #expect(try !unique(#"{"a":1,"a":1}"#))
        #expect(try !unique(#"[1,{"x":[{"y":1,"z":2,"y":3}]}]"#))
        #expect(try !unique(#"{"a":{"b":{}},"c":{"d":1,"d":2},"e":3}"#))
        // Members of objects read one inside another each land in their own object.
        let nested = try parse(#"{"a":{"b":1,"c":{"d":2,"b":3}},"e":[{"f":3},{"g":4,"g":5}],"b":6}"#)
        #expect(nested == ["a": ["b": 1, "c": ["d": 2, "b": 3]], "e": [["f": 3], ["g": 5]], "b": 6])
    }

    /// Every kind of byte at every place of strings of 1 to 20 bytes, so in each lane of the eight-byte scan and in
    /// the bytes after it: the parser takes exactly what the standard library's validation and JSON's rules allow.
    @Test func stringsAreReadTheSameWhereverAByteFalls() throws {
        let fillers = [Array("abcdefghijklmnopqrst".utf8), Array("ééééééééééé".utf8)]
        let probes: [[UInt8]] = [
            [0x22], [0x5C], [0x5C, 0x6E], [0x00], [0x1F], [0x7F], [0x80], [0xC3, 0xA9], [0xE2, 0x82, 0xAC], [0xFF],
            [0xED, 0xA0, 0x80], [0xF0, 0x9F, 0x98, 0x80], [0xC0, 0xAF],
        ]
        for filler in fillers {
            for length in 1...20 {
                for position in 0..<length {
                    for probe in probes {
                        var text = Array(filler.prefix(length))
                        text.replaceSubrange(position..<min(position + 1, text.count), with: probe)
                        let literal = [UInt8(ascii: "\"")] + text + [UInt8(ascii: "\"")]
                        let parsed = try? JSONValue(parsing: literal)
                        let expected = try? JSONDecoder().decode(JSONValue.self, from: Data(literal))
                        guard parsed == expected else {
                            Issue.record("\(probe) at \(position) of \(length): \(String(describing: parsed))")
                            return
                        }
                    }
                }
            }
        }
    }

    @Test func writerRoundTripsAndEscapes() throws {
        let value: JSONValue = [
            "text": "quote \" backslash \\ slash / newline \n tab \t bell \u{07} é 😀", "n": 42, "x": 1.5, "ok": true,
            "none": nil, "list": [1, "two", ["three": 3]],
        ]
        let written = value.serialized()
        let text = String(decoding: written, as: UTF8.self)
        #expect(
            text.hasPrefix(
                #"{"list":[1,"two",{"three":3}],"n":42,"none":null,"ok":true,"text":"quote \" backslash \\ slash / newline \n tab \t bell \u0007 é 😀""#
            ))
        #expect(try JSONValue(parsing: written) == value)
        #expect(try JSONDecoder().decode(JSONValue.self, from: Data(written)) == value)
        #expect(JSONValue.double(.infinity).serialized() == Array("null".utf8))
    }

    /// Beyond what RFC 8259 requires, DEL is escaped too: the text is often read on a terminal (log lines are).
    @Test func writerEscapesDeleteAndKeepsOtherTextAsItIs() throws {
        let value = JSONValue.string("a\u{7F}b\u{1B}c\u{85}d")
        let text = String(decoding: value.serialized(), as: UTF8.self)
        #expect(text == "\"a\\u007fb\\u001bc\u{85}d\"")
        #expect(try JSONValue(parsing: value.serialized()) == value)
    }
}

@Suite("JSON string writer")
struct JSONStringWriterTests {
    /// The writer's rules, one byte at a time.
    static func reference(_ bytes: [UInt8]) -> [UInt8] {
        var output: [UInt8] = [UInt8(ascii: "\"")]
        for byte in bytes {
            switch byte {
            case UInt8(ascii: "\""): output += Array(#"\""#.utf8)
            case UInt8(ascii: "\\"): output += Array(#"\\"#.utf8)
            case 0x0A: output += Array(#"\n"#.utf8)
            case 0x0D: output += Array(#"\r"#.utf8)
            case 0x09: output += Array(#"\t"#.utf8)
            case 0..<0x20, 0x7F: output += Array(String(format: "\\u%04x", byte).utf8)
            default: output.append(byte)
            }
        }
        return output + [UInt8(ascii: "\"")]
    }

    static func written(_ bytes: [UInt8]) -> [UInt8] {
        var output: [UInt8] = []
        bytes.withUnsafeBufferPointer { JSONValue.writeString(utf8: $0, to: &output) }
        return output
    }

    @Test func everyByteAtEveryPlaceOfAWordIsWrittenAsTheRulesSay() {
        // Each of the 256 byte values, at each position of texts 1 to 20 bytes long (so in every lane of an eight-byte
        // word, and in the tail the words leave), among plain letters and among UTF-8 of other scripts.
        for filler in [Array("abcdefghijklmnopqrst".utf8), Array("ééééééééééé".utf8).prefix(20).map { $0 }] {
            for length in 1...20 {
                for position in 0..<length {
                    for byte in UInt8.min...UInt8.max {
                        var text = Array(filler.prefix(length))
                        text[position] = byte
                        guard Self.written(text) == Self.reference(text) else {
                            Issue.record("byte \(byte) at \(position) of \(length)")
                            return
                        }
                    }
                }
            }
        }
    }

    @Test func emptyAndMixedTexts() {
        #expect(Self.written([]) == Array(#""""#.utf8))
        let mixed = Array("line one\nline \"two\"\t\\ end \u{7F}\u{1B}[31m 🧪 x".utf8)
        #expect(Self.written(mixed) == Self.reference(mixed))
        let long = Array(String(repeating: "0123456789abcdef", count: 100).utf8) + [0x0A]
        #expect(Self.written(long) == Self.reference(long))
    }

    @Test func theWordTestSeesEachLaneAndNothingElse() {
        for lane in 0..<8 {
            for byte in UInt8.min...UInt8.max {
                var word = [UInt8](repeating: UInt8(ascii: "a"), count: 8)
                word[lane] = byte
                let value = word.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
                let expected = byte < 0x20 || byte == 0x22 || byte == 0x5C || byte == 0x7F
                #expect(JSONValue.needsEscape(value) == expected, "byte \(byte) in lane \(lane)")
            }
        }
    }
}

@Suite("UTF-8 validation")
struct UTF8ValidationTests {
    static func agrees(_ bytes: [UInt8]) -> Bool {
        let ours = bytes.withUnsafeBufferPointer { UTF8Validation.isWellFormed($0) }
        return ours == (String(validating: bytes, as: UTF8.self) != nil)
    }

    /// Every sequence of one and two bytes; every lead byte with the edge values of the bytes after it (where a range
    /// of Table 3-7 of Unicode starts or ends), alone, after ASCII and before it: the same answers as the standard
    /// library's validation.
    @Test func agreesWithTheStandardLibrary() {
        let edges: [UInt8] = [0x00, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xFF]
        for first in UInt8.min...UInt8.max {
            #expect(Self.agrees([first]), "\(first)")
            for second in UInt8.min...UInt8.max where !Self.agrees([first, second]) {
                Issue.record("\([first, second])")
                return
            }
            guard first >= 0xC0 else { continue }
            for second in edges {
                for third in edges {
                    for fourth: UInt8 in [0x41, 0x80, 0xBF, 0xC0] {
                        for sequence in [[first, second, third], [first, second, third, fourth]] {
                            for framed in [sequence, Array("ab".utf8) + sequence, sequence + Array("z".utf8)]
                            where !Self.agrees(framed) {
                                Issue.record("\(framed)")
                                return
                            }
                        }
                    }
                }
            }
        }
    }

    @Test func namedCases() {
        let valid: [[UInt8]] = [
            [], Array("plain".utf8), Array("é€😀".utf8), [0xF4, 0x8F, 0xBF, 0xBF], [0xEF, 0xBF, 0xBF],
        ]
        let invalid: [[UInt8]] = [
            [0xC0, 0x80],  // an overlong NUL
            [0xE0, 0x80, 0xAF],  // an overlong '/'
            [0xED, 0xA0, 0x80],  // a surrogate
            [0xF4, 0x90, 0x80, 0x80],  // past U+10FFFF
            [0xF5, 0x80, 0x80, 0x80], [0x80], [0xC3], [0xE2, 0x82], Array("é".utf8).reversed(),
        ]
        for bytes in valid { #expect(bytes.withUnsafeBufferPointer { UTF8Validation.isWellFormed($0) }, "\(bytes)") }
        for bytes in invalid { #expect(!bytes.withUnsafeBufferPointer { UTF8Validation.isWellFormed($0) }, "\(bytes)") }
    }
}
