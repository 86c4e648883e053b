/// Whether bytes are well-formed UTF-8 (RFC 3629): no stray continuation bytes, overlong forms, surrogates (U+D800 to
/// U+DFFF) or scalars past U+10FFFF.
///
/// The standard library's `String(validating:as:)` does the same, but through a generic function that is not
/// specialised: each call looks the encoding's types up at run time, which costs more than checking a short string.
public enum UTF8Validation {
    public static func isWellFormed(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        var index = 0
        let count = bytes.count
        while index < count {
            let lead = bytes[index]
            if lead < 0x80 {
                index += 1
                continue
            }
            // The length a lead byte announces, and the range its second byte must fall in (Table 3-7 of Unicode).
            let length: Int
            var lowest: UInt8 = 0x80
            var highest: UInt8 = 0xBF
            switch lead {
            case 0xC2...0xDF: length = 2
            case 0xE0: (length, lowest) = (3, 0xA0)
            case 0xE1...0xEC, 0xEE...0xEF: length = 3
            case 0xED: (length, highest) = (3, 0x9F)
            case 0xF0: (length, lowest) = (4, 0x90)
            case 0xF1...0xF3: length = 4
            case 0xF4: (length, highest) = (4, 0x8F)
            default: return false
            }
            guard count - index >= length, (lowest...highest).contains(bytes[index + 1]) else { return false }
            for offset in 2..<length where bytes[index + offset] & 0xC0 != 0x80 { return false }
            index += length
        }
        return true
    }

    /// The text of `bytes` when they are well-formed UTF-8, else `nil`.
    public static func string(_ bytes: UnsafeBufferPointer<UInt8>) -> String? {
        isWellFormed(bytes) ? String(decoding: bytes, as: UTF8.self) : nil
    }
}
