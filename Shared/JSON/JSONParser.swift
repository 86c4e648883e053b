/// A strict RFC 8259 JSON parser producing ``JSONValue``s, several times faster than decoding `JSONValue` through
/// `JSONDecoder` (which cannot ask which kind of value comes next and has to try each in turn).
///
/// Strict means: one value and nothing but whitespace after it; no comments, trailing commas, single quotes, leading
/// zeros, `NaN` or bare control characters; valid UTF-8; `\u` escapes must form valid scalars (no lone surrogates).
/// Nesting is limited (512 levels) so that hostile input cannot exhaust the stack. Duplicate object members: the last
/// one wins, and ``parse(_:)`` says there were some (``Parsed/namesAreUnique``).
public enum JSONParser {
    static let maximumDepth = 512

    struct Failure: Error, CustomStringConvertible {
        let offset: Int
        let reason: String
        var description: String { "invalid JSON at byte \(offset): \(reason)" }
    }

    /// A parsed value, and whether the text it came from means exactly this value to every reader.
    public struct Parsed: Sendable {
        public let value: JSONValue
        /// No object in the text names a member twice. Readers disagree on which of two equal names counts (this
        /// parser keeps the last, others the first), so only then may the text stand for ``value``: passed on as it
        /// is, it cannot show a reader anything else than what was checked.
        public let namesAreUnique: Bool
    }

    static func parse(_ bytes: UnsafeBufferPointer<UInt8>) throws(Failure) -> Parsed {
        var reader = Reader(bytes: bytes)
        reader.skipWhitespace()
        let value = try reader.value(depth: 0)
        reader.skipWhitespace()
        guard reader.offset == bytes.count else {
            throw Failure(offset: reader.offset, reason: "unexpected trailing data")
        }
        return Parsed(value: value, namesAreUnique: !reader.namesRepeated)
    }

    private struct Reader {
        let bytes: UnsafeBufferPointer<UInt8>
        var offset = 0
        /// The members of the objects being read, innermost last: each object's dictionary is made once, at its
        /// size, when its `}` is reached, instead of growing (and hashing every name again) member by member.
        var pendingMembers: [(name: String, value: JSONValue)] = []
        /// Whether some object named a member twice.
        var namesRepeated = false

        func fail(_ reason: String) -> Failure { Failure(offset: offset, reason: reason) }

        var current: UInt8? { offset < bytes.count ? bytes[offset] : nil }

        mutating func skipWhitespace() {
            while offset < bytes.count {
                switch bytes[offset] {
                case 0x20, 0x09, 0x0A, 0x0D: offset += 1
                default: return
                }
            }
        }

        mutating func value(depth: Int) throws(Failure) -> JSONValue {
            guard let byte = current else { throw fail("unexpected end of input") }
            switch byte {
            case UInt8(ascii: "{"): return try object(depth: depth + 1)
            case UInt8(ascii: "["): return try array(depth: depth + 1)
            case UInt8(ascii: "\""): return .string(try string())
            case UInt8(ascii: "t"):
                try literal("true")
                return .bool(true)
            case UInt8(ascii: "f"):
                try literal("false")
                return .bool(false)
            case UInt8(ascii: "n"):
                try literal("null")
                return .null
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try number()
            default: throw fail("unexpected character")
            }
        }

        mutating func literal(_ word: StaticString) throws(Failure) {
            let count = word.utf8CodeUnitCount
            guard offset + count <= bytes.count else { throw fail("unexpected end of input") }
            for index in 0..<count where bytes[offset + index] != word.utf8Start[index] {
                throw fail("invalid literal")
            }
            offset += count
        }

        mutating func object(depth: Int) throws(Failure) -> JSONValue {
            guard depth <= JSONParser.maximumDepth else { throw fail("nested too deeply") }
            offset += 1
            skipWhitespace()
            if current == UInt8(ascii: "}") {
                offset += 1
                return .object([:])
            }
            let first = pendingMembers.count
            while true {
                skipWhitespace()
                guard current == UInt8(ascii: "\"") else { throw fail("expected a member name") }
                let name = try string()
                skipWhitespace()
                guard current == UInt8(ascii: ":") else { throw fail("expected ':'") }
                offset += 1
                skipWhitespace()
                pendingMembers.append((name, try value(depth: depth)))
                skipWhitespace()
                switch current {
                case UInt8(ascii: ","): offset += 1
                case UInt8(ascii: "}"):
                    offset += 1
                    let count = pendingMembers.count - first
                    var members = [String: JSONValue](minimumCapacity: count)
                    for index in first..<pendingMembers.count {
                        members[pendingMembers[index].name] = pendingMembers[index].value  // the last one wins
                    }
                    if members.count < count { namesRepeated = true }
                    pendingMembers.removeLast(count)
                    return .object(members)
                default: throw fail("expected ',' or '}'")
                }
            }
        }

        mutating func array(depth: Int) throws(Failure) -> JSONValue {
            guard depth <= JSONParser.maximumDepth else { throw fail("nested too deeply") }
            offset += 1
            var elements: [JSONValue] = []
            skipWhitespace()
            if current == UInt8(ascii: "]") {
                offset += 1
                return .array(elements)
            }
            while true {
                skipWhitespace()
                elements.append(try value(depth: depth))
                skipWhitespace()
                switch current {
                case UInt8(ascii: ","): offset += 1
                case UInt8(ascii: "]"):
                    offset += 1
                    return .array(elements)
                default: throw fail("expected ',' or ']'")
                }
            }
        }

        mutating func string() throws(Failure) -> String {
            offset += 1  // opening quote
            let start = offset
            // Fast path: no escapes. Eight bytes at a time while none of them ends the run.
            var highBits: UInt64 = 0
            while offset + 8 <= bytes.count {
                let word = UnsafeRawPointer(bytes.baseAddress! + offset).loadUnaligned(as: UInt64.self)
                let endsRun =
                    ByteWord.hasByteBelow(word, 0x20) || ByteWord.hasByte(word, UInt8(ascii: "\""))
                    || ByteWord.hasByte(word, UInt8(ascii: "\\"))
                if endsRun { break }
                highBits |= word
                offset += 8
            }
            var allASCII = highBits & ByteWord.highs == 0
            while offset < bytes.count {
                let byte = bytes[offset]
                if byte == UInt8(ascii: "\"") {
                    let text = try decodeUTF8(start..<offset, knownASCII: allASCII)
                    offset += 1
                    return text
                }
                if byte >= 0x80 { allASCII = false }
                if byte == UInt8(ascii: "\\") { break }
                guard byte >= 0x20 else { throw fail("control character in a string") }
                offset += 1
            }
            var buffer = Array(bytes[start..<offset])
            while offset < bytes.count {
                let byte = bytes[offset]
                switch byte {
                case UInt8(ascii: "\""):
                    offset += 1
                    guard let text = buffer.withUnsafeBufferPointer(UTF8Validation.string) else {
                        throw fail("invalid UTF-8")
                    }
                    return text
                case UInt8(ascii: "\\"):
                    offset += 1
                    guard let escaped = current else { throw fail("unexpected end of input") }
                    offset += 1
                    switch escaped {
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): buffer.append(escaped)
                    case UInt8(ascii: "b"): buffer.append(0x08)
                    case UInt8(ascii: "f"): buffer.append(0x0C)
                    case UInt8(ascii: "n"): buffer.append(0x0A)
                    case UInt8(ascii: "r"): buffer.append(0x0D)
                    case UInt8(ascii: "t"): buffer.append(0x09)
                    case UInt8(ascii: "u"): buffer.append(contentsOf: Array(String(try unicodeEscape()).utf8))
                    default: throw fail("invalid escape")
                    }
                default:
                    guard byte >= 0x20 else { throw fail("control character in a string") }
                    buffer.append(byte)
                    offset += 1
                }
            }
            throw fail("unterminated string")
        }

        /// The scalar of a `\uXXXX` escape (the `\u` already read), joining surrogate pairs.
        mutating func unicodeEscape() throws(Failure) -> Character {
            let high = try hex4()
            if (0xDC00...0xDFFF).contains(high) { throw fail("lone low surrogate") }
            if (0xD800...0xDBFF).contains(high) {
                guard offset + 2 <= bytes.count, bytes[offset] == UInt8(ascii: "\\"),
                    bytes[offset + 1] == UInt8(ascii: "u")
                else { throw fail("lone high surrogate") }
                offset += 2
                let low = try hex4()
                guard (0xDC00...0xDFFF).contains(low) else { throw fail("invalid surrogate pair") }
                let scalar = 0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)
                guard let value = Unicode.Scalar(scalar) else { throw fail("invalid scalar") }
                return Character(value)
            }
            guard let value = Unicode.Scalar(high) else { throw fail("invalid scalar") }
            return Character(value)
        }

        mutating func hex4() throws(Failure) -> UInt32 {
            guard offset + 4 <= bytes.count else { throw fail("unexpected end of input") }
            var value: UInt32 = 0
            for _ in 0..<4 {
                let byte = bytes[offset]
                let digit: UInt8
                switch byte {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
                case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
                case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
                default: throw fail("invalid \\u escape")
                }
                value = value << 4 | UInt32(digit)
                offset += 1
            }
            return value
        }

        mutating func number() throws(Failure) -> JSONValue {
            let start = offset
            if current == UInt8(ascii: "-") { offset += 1 }
            guard let first = current, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(first) else {
                throw fail("invalid number")
            }
            if first == UInt8(ascii: "0") {
                offset += 1
                if let next = current, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(next) {
                    throw fail("leading zero in a number")
                }
            } else {
                skipDigits()
            }
            var isInteger = true
            if current == UInt8(ascii: ".") {
                isInteger = false
                offset += 1
                guard skipDigits() > 0 else { throw fail("digits expected after '.'") }
            }
            if current == UInt8(ascii: "e") || current == UInt8(ascii: "E") {
                isInteger = false
                offset += 1
                if current == UInt8(ascii: "+") || current == UInt8(ascii: "-") { offset += 1 }
                guard skipDigits() > 0 else { throw fail("digits expected in the exponent") }
            }
            let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<offset]), as: UTF8.self)
            if isInteger, let integer = Int64(text) { return .integer(integer) }
            guard let double = Double(text), double.isFinite else { throw fail("number out of range") }
            return .double(double)
        }

        @discardableResult
        mutating func skipDigits() -> Int {
            let start = offset
            while let byte = current, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) { offset += 1 }
            return offset - start
        }

        /// The text of `range`, which must be well-formed UTF-8 (ASCII always is).
        func decodeUTF8(_ range: Range<Int>, knownASCII: Bool) throws(Failure) -> String {
            let slice = UnsafeBufferPointer(rebasing: bytes[range])
            if knownASCII { return String(decoding: slice, as: UTF8.self) }
            guard let text = UTF8Validation.string(slice) else { throw fail("invalid UTF-8") }
            return text
        }
    }
}

extension JSONValue {
    /// Parses JSON text strictly (RFC 8259); see ``JSONParser``.
    public init(parsing bytes: some Collection<UInt8>) throws {
        self = try JSONParser.parse(bytes).value
    }
}

extension JSONParser {
    /// Parses JSON text strictly (RFC 8259), saying whether its objects' member names are unique.
    public static func parse(_ bytes: some Collection<UInt8>) throws -> Parsed {
        let parsed = bytes.withContiguousStorageIfAvailable { buffer in Result { try parse(buffer) } }
        switch parsed {
        case .some(let result): return try result.get()
        case .none: return try Array(bytes).withUnsafeBufferPointer { try parse($0) }
        }
    }
}
