import Foundation
import JSON
import Testing

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
