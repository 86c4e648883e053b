extension JSONValue {
    /// Compact JSON text of this value: members in sorted order (stable output), `/` not escaped, control characters
    /// escaped as RFC 8259 requires, and DEL too (the text is often read on a terminal, as log lines are). Non-finite numbers, which JSON cannot express, are written as `null`.
    public func serialized() -> [UInt8] {
        var output: [UInt8] = []
        output.reserveCapacity(256)
        write(to: &output)
        return output
    }

    /// Appends the compact JSON text of this value to `output`.
    public func write(to output: inout [UInt8]) {
        switch self {
        case .null: output.append(contentsOf: "null".utf8)
        case .bool(let value): output.append(contentsOf: (value ? "true" : "false").utf8)
        case .integer(let value): output.append(contentsOf: String(value).utf8)
        case .double(let value):
            if value.isFinite {
                output.append(contentsOf: "\(value)".utf8)
            } else {
                output.append(contentsOf: "null".utf8)
            }
        case .string(let value): Self.writeString(value, to: &output)
        case .array(let elements):
            output.append(UInt8(ascii: "["))
            for (index, element) in elements.enumerated() {
                if index > 0 { output.append(UInt8(ascii: ",")) }
                element.write(to: &output)
            }
            output.append(UInt8(ascii: "]"))
        case .object(let members):
            output.append(UInt8(ascii: "{"))
            for (index, member) in members.sorted(by: { $0.key < $1.key }).enumerated() {
                if index > 0 { output.append(UInt8(ascii: ",")) }
                Self.writeString(member.key, to: &output)
                output.append(UInt8(ascii: ":"))
                member.value.write(to: &output)
            }
            output.append(UInt8(ascii: "}"))
        }
    }

    /// Appends `value` as a JSON string literal.
    public static func writeString(_ value: String, to output: inout [UInt8]) {
        var value = value
        value.withUTF8 { writeString(utf8: $0, to: &output) }
    }

    /// Appends UTF-8 text as a JSON string literal: runs of characters that need no escape are copied at once.
    ///
    /// Every response body goes through here, so the text is scanned eight bytes at a time (``needsEscape(_:)``) and
    /// byte by byte only around a character to escape.
    public static func writeString(utf8 bytes: UnsafeBufferPointer<UInt8>, to output: inout [UInt8]) {
        output.append(UInt8(ascii: "\""))
        guard let base = bytes.baseAddress else {
            output.append(UInt8(ascii: "\""))
            return
        }
        var start = 0
        var index = 0
        while index < bytes.count {
            if index + 8 <= bytes.count,
                !needsEscape(UnsafeRawPointer(base + index).loadUnaligned(as: UInt64.self))
            {
                index += 8
                continue
            }
            let byte = bytes[index]
            index += 1
            guard byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") || byte == 0x7F else {
                continue
            }
            if start < index - 1 { output.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[start..<index - 1])) }
            start = index
            output.append(UInt8(ascii: "\\"))
            switch byte {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"): output.append(byte)
            case 0x0A: output.append(UInt8(ascii: "n"))
            case 0x0D: output.append(UInt8(ascii: "r"))
            case 0x09: output.append(UInt8(ascii: "t"))
            default:
                output.append(contentsOf: "u00".utf8)
                output.append(hexDigit(byte >> 4))
                output.append(hexDigit(byte & 0x0F))
            }
        }
        if start < bytes.count { output.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[start..<bytes.count])) }
        output.append(UInt8(ascii: "\""))
    }

    /// Whether any of the eight bytes of `word` must be escaped: a control character (below 0x20), `"`, `\` or DEL.
    @inline(__always)
    static func needsEscape(_ word: UInt64) -> Bool {
        ByteWord.hasByteBelow(word, 0x20) || ByteWord.hasByte(word, UInt8(ascii: "\""))
            || ByteWord.hasByte(word, UInt8(ascii: "\\")) || ByteWord.hasByte(word, 0x7F)
    }

    private static func hexDigit(_ value: UInt8) -> UInt8 {
        value < 10 ? UInt8(ascii: "0") + value : UInt8(ascii: "a") + value - 10
    }
}
