import CairnCore

/// Writes the RESP commands of operations straight into an output buffer, without building strings
/// (the client sends hundreds of thousands a second).
///
/// Record `n` is the key `key:` followed by `n` in 12 zero-padded digits, as redis-benchmark's
/// `key:__rand_int__` keys are, so both tools touch the same keys. Values are bytes of a fixed
/// pseudo-random pattern drawn once from the seed.
public struct CommandEncoder: Sendable {
    public static let keyPrefix: [UInt8] = Array("key:".utf8)
    public static let keyDigits = 12
    public static let keyBytes = keyPrefix.count + keyDigits
    public static let recordsMax = 999_999_999_999
    static let getHeader: [UInt8] = Array("*2\r\n$3\r\nGET\r\n$\(keyBytes)\r\n".utf8)
    static let setHeader: [UInt8] = Array("*3\r\n$3\r\nSET\r\n$\(keyBytes)\r\n".utf8)
    let pattern: [UInt8]

    public init(valueBytesMax: Int, seed: UInt64) {
        var prng = SplitMix64(seed: seed ^ 0x5EED_0F00_BA5E_0001)
        // Printable bytes, so a value can be looked at with redis-cli.
        pattern = (0..<Swift.max(valueBytesMax, 1)).map { _ in UInt8(ascii: "a") + UInt8(prng.below(26)) }
    }

    /// Appends the key of `record` to `output`.
    @inline(__always)
    public static func appendKey(_ record: Int, to output: inout [UInt8]) {
        precondition(record >= 0 && record <= recordsMax, "record \(record) outside 0...\(recordsMax)")
        output.append(contentsOf: keyPrefix)
        appendDigits(UInt64(record), width: keyDigits, to: &output)
    }

    /// The key of `record` as bytes.
    public static func key(_ record: Int) -> [UInt8] {
        var bytes: [UInt8] = []
        appendKey(record, to: &bytes)
        return bytes
    }

    /// Appends `value` in exactly `width` decimal digits (at most 20), zero-padded.
    @inline(__always)
    static func appendDigits(_ value: UInt64, width: Int, to output: inout [UInt8]) {
        precondition(width >= 1 && width <= 20, "digit width \(width) outside 1...20")
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)
        withUnsafeMutableBytes(of: &digits) { buffer in
            var rest = value
            var position = width - 1
            while position >= 0 {
                buffer[position] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: rest % 10)
                rest /= 10
                position -= 1
            }
            output.append(contentsOf: UnsafeRawBufferPointer(rebasing: buffer[0..<width]))
        }
    }

    /// Appends `value` in decimal.
    @inline(__always)
    static func appendDecimal(_ value: Int, to output: inout [UInt8]) {
        precondition(value >= 0, "negative length \(value)")
        var digits = 0
        var rest = value
        repeat {
            digits += 1
            rest /= 10
        } while rest > 0
        appendDigits(UInt64(value), width: digits, to: &output)
    }

    /// `GET key`.
    @inline(__always)
    public func appendGet(_ record: Int, to output: inout [UInt8]) {
        output.append(contentsOf: Self.getHeader)
        Self.appendKey(record, to: &output)
        output.append(0x0D)
        output.append(0x0A)
    }

    /// `SET key value` with a value of `valueBytes` bytes.
    @inline(__always)
    public func appendSet(_ record: Int, valueBytes: Int, to output: inout [UInt8]) {
        precondition(valueBytes <= pattern.count, "value of \(valueBytes) bytes beyond the pattern's \(pattern.count)")
        output.append(contentsOf: Self.setHeader)
        Self.appendKey(record, to: &output)
        output.append(contentsOf: [0x0D, 0x0A, UInt8(ascii: "$")])
        Self.appendDecimal(valueBytes, to: &output)
        output.append(0x0D)
        output.append(0x0A)
        // Start the value at a record-dependent offset, so values differ between keys.
        let offset = valueBytes == pattern.count ? 0 : record % (pattern.count - valueBytes + 1)
        output.append(contentsOf: pattern[offset..<(offset + valueBytes)])
        output.append(0x0D)
        output.append(0x0A)
    }

    /// `MGET` of `count` consecutive records from `record`.
    public func appendMultiGet(_ record: Int, count: Int, to output: inout [UInt8]) {
        precondition(count >= 1, "MGET of \(count) keys")
        output.append(UInt8(ascii: "*"))
        Self.appendDecimal(count + 1, to: &output)
        output.append(contentsOf: Array("\r\n$4\r\nMGET\r\n".utf8))
        for offset in 0..<count {
            output.append(contentsOf: Array("$\(Self.keyBytes)\r\n".utf8))
            Self.appendKey(record + offset, to: &output)
            output.append(0x0D)
            output.append(0x0A)
        }
    }

    /// A whole command from words, for setup commands (HELLO, CLUSTER SLOTS, ASKING).
    public static func command(_ words: [String]) -> [UInt8] {
        var output: [UInt8] = Array("*\(words.count)\r\n".utf8)
        for word in words {
            output.append(contentsOf: Array("$\(word.utf8.count)\r\n\(word)\r\n".utf8))
        }
        return output
    }
}
