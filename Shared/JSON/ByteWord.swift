/// Tests on the eight bytes of a word at once, for scanning text eight bytes at a time.
///
/// They are the classic ones: `(x - 0x01…01 × n) & ~x & 0x80…80` is non-zero exactly when some byte of `x` is below `n`
/// (for `n` up to 128), and a byte equal to `c` is a zero byte of `x ^ c…c`.
enum ByteWord {
    static let ones: UInt64 = 0x0101_0101_0101_0101
    static let highs: UInt64 = 0x8080_8080_8080_8080

    /// Whether some byte of `word` is below `limit` (at most 128).
    @inline(__always)
    static func hasByteBelow(_ word: UInt64, _ limit: UInt8) -> Bool {
        (word &- ones &* UInt64(limit)) & ~word & highs != 0
    }

    /// Whether some byte of `word` is `byte`.
    @inline(__always)
    static func hasByte(_ word: UInt64, _ byte: UInt8) -> Bool {
        hasByteBelow(word ^ (ones &* UInt64(byte)), 1)
    }
}
