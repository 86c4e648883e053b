/// Text that comes from outside (a token's `sub`, a name, an email, a provider's answer) and ends up in log lines, on
/// a terminal or in a header: it must not carry characters that change what those show. A newline in a subject
/// would write a whole forged line into a text log; an escape sequence in a name would rewrite an operator's terminal.
public enum ClaimText {
    /// Whether `scalar` is one of those characters: the C0 and C1 controls and DEL (newline, carriage return, escape,
    /// bell, …), the line and paragraph separators, and the bidirectional formatting characters that reorder what a
    /// terminal shows.
    public static func isUnsafe(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x00...0x1F, 0x7F...0x9F: true
        case 0x2028, 0x2029: true
        case 0x061C, 0x200E, 0x200F, 0x202A...0x202E, 0x2066...0x2069: true
        default: false
        }
    }

    /// Whether `text` holds none of the characters of ``isUnsafe(_:)``.
    public static func isSafe(_ text: String) -> Bool {
        !text.unicodeScalars.contains(where: isUnsafe)
    }

    /// `text` with each character of ``isUnsafe(_:)`` written as an escape: `\n`, `\r`, `\t`, or `\u{1B}`. What was
    /// there stays visible, on one line, inert.
    public static func escaped(_ text: String) -> String {
        guard !isSafe(text) else { return text }
        var result = ""
        result.reserveCapacity(text.utf8.count + 8)
        for scalar in text.unicodeScalars {
            guard isUnsafe(scalar) else {
                result.unicodeScalars.append(scalar)
                continue
            }
            switch scalar {
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case "\t": result += "\\t"
            default: result += "\\u{" + String(scalar.value, radix: 16, uppercase: true) + "}"
            }
        }
        return result
    }
}
