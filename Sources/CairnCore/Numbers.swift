/// Number parsing and formatting with Redis's exact rules, over bytes (no Foundation in pure modules).
public enum Numbers {
    /// The value of one hexadecimal digit (`0-9`, `a-f`, `A-F`), or nil for any other byte.
    public static func hexDigitValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    /// Parses a signed 64-bit integer the way Redis's `string2ll` does: optional `-`, digits, no
    /// leading `+`, no spaces, no leading zeros (except "0" itself), and it must fit in 64 bits.
    @inlinable
    public static func parseInt64<Bytes: Collection>(_ bytes: Bytes) -> Int64? where Bytes.Element == UInt8 {
        guard !bytes.isEmpty, bytes.count <= 20 else { return nil }
        var iterator = bytes.makeIterator()
        var first = iterator.next()!
        var negative = false
        if first == UInt8(ascii: "-") {
            guard bytes.count > 1 else { return nil }
            negative = true
            first = iterator.next()!
        }
        guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(first) else { return nil }
        if first == UInt8(ascii: "0") {
            return bytes.count == 1 ? 0 : nil
        }
        var magnitude = UInt64(first - UInt8(ascii: "0"))
        while let byte = iterator.next() {
            guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) else { return nil }
            let (times, overflowTimes) = magnitude.multipliedReportingOverflow(by: 10)
            let (plus, overflowPlus) = times.addingReportingOverflow(UInt64(byte - UInt8(ascii: "0")))
            if overflowTimes || overflowPlus { return nil }
            magnitude = plus
        }
        if negative {
            if magnitude == UInt64(Int64.max) + 1 { return Int64.min }
            guard magnitude <= UInt64(Int64.max) else { return nil }
            return -Int64(magnitude)
        }
        guard magnitude <= UInt64(Int64.max) else { return nil }
        return Int64(magnitude)
    }

    /// Parses a finite or infinite double as Redis's `string2ld` accepts it: no surrounding spaces,
    /// not NaN. Returns nil for anything else.
    public static func parseDouble<Bytes: Collection>(_ bytes: Bytes) -> Double? where Bytes.Element == UInt8 {
        guard !bytes.isEmpty, bytes.count <= 5000 else { return nil }
        guard let first = bytes.first, let last = bytes.reversed().first,
            !isSpace(first), !isSpace(last)
        else { return nil }
        guard let text = String(validating: bytes, as: UTF8.self) else { return nil }
        let lowered = text.lowercased()
        switch lowered {
        case "inf", "+inf", "infinity", "+infinity": return .infinity
        case "-inf", "-infinity": return -.infinity
        default: break
        }
        guard let value = Double(text), !value.isNaN else { return nil }
        // Swift accepts hexadecimal floats ("0x1p3") as strtold does; Redis accepts them too.
        return value
    }

    private static func isSpace(_ byte: UInt8) -> Bool {
        byte == 0x20 || (0x09...0x0D).contains(byte)
    }

    /// Formats a double as Redis's "human" long-double format does for INCRBYFLOAT: plain decimal
    /// notation, never an exponent, no trailing zeros, and no trailing point ("3", "10.5", "0.0001").
    /// Swift's shortest round-trip digits stand in for `%.17Lf`, which avoids binary noise such as
    /// "10.59999999999999964".
    public static func formatHuman(_ value: Double) -> String {
        if value.isInfinite { return value > 0 ? "inf" : "-inf" }
        if value == 0 { return "0" }
        let text = "\(value)"
        guard let exponentIndex = text.firstIndex(where: { $0 == "e" || $0 == "E" }) else {
            return trimFraction(text)
        }
        // Expand "d.ddde±x" into plain digits.
        var mantissa = String(text[..<exponentIndex])
        let exponent = Int(text[text.index(after: exponentIndex)...]) ?? 0
        var negative = false
        if mantissa.hasPrefix("-") {
            negative = true
            mantissa.removeFirst()
        }
        let parts = mantissa.split(separator: ".", omittingEmptySubsequences: false)
        let integerDigits = String(parts[0])
        let fractionDigits = parts.count > 1 ? String(parts[1]) : ""
        var digits = integerDigits + fractionDigits
        var pointPosition = integerDigits.count + exponent
        if pointPosition <= 0 {
            digits = String(repeating: "0", count: -pointPosition + 1) + digits
            pointPosition = 1
        } else if pointPosition > digits.count {
            digits += String(repeating: "0", count: pointPosition - digits.count)
        }
        let integerPart = digits.prefix(pointPosition)
        let fractionPart = digits.dropFirst(pointPosition)
        let plain = fractionPart.isEmpty ? String(integerPart) : "\(integerPart).\(fractionPart)"
        return (negative ? "-" : "") + trimFraction(plain)
    }

    private static func trimFraction(_ text: String) -> String {
        guard text.contains(".") else { return text }
        var trimmed = Substring(text)
        while trimmed.last == "0" { trimmed.removeLast() }
        if trimmed.last == "." { trimmed.removeLast() }
        return String(trimmed)
    }
}

extension Array where Element == UInt8 {
    /// The bytes of a string in UTF-8.
    @inlinable public init(utf8 text: String) { self = Array(text.utf8) }
}

extension String {
    /// Decodes bytes as UTF-8, repairing invalid sequences (for log lines and error texts only).
    @inlinable public init(bytes: some Collection<UInt8>) { self = String(decoding: bytes, as: UTF8.self) }
}

#if arch(x86_64) || arch(i386)
    /// C's `long double` on this platform, which Redis uses for INCRBYFLOAT.
    public typealias LongDouble = Float80
#else
    /// C's `long double` on this platform, which Redis uses for INCRBYFLOAT.
    public typealias LongDouble = Double
#endif

extension Numbers {
    /// Parses a number for INCRBYFLOAT as Redis's `string2ld` does (strtold): no surrounding spaces,
    /// not NaN; decimal, exponent and hexadecimal forms are accepted.
    public static func parseLongDouble<Bytes: Collection>(_ bytes: Bytes) -> LongDouble? where Bytes.Element == UInt8 {
        guard !bytes.isEmpty, bytes.count <= 5000, let first = bytes.first, let last = bytes.reversed().first,
            !isSpaceByte(first), !isSpaceByte(last), let text = String(validating: bytes, as: UTF8.self)
        else { return nil }
        switch text.lowercased() {
        case "inf", "+inf", "infinity", "+infinity": return .infinity
        case "-inf", "-infinity": return -.infinity
        default: break
        }
        if let value = LongDouble(text), !value.isNaN { return value }
        // strtold also reads hexadecimal integers without a binary exponent ("0x10").
        let sign: LongDouble = text.hasPrefix("-") ? -1 : 1
        let unsigned = text.hasPrefix("-") || text.hasPrefix("+") ? text.dropFirst() : Substring(text)
        if unsigned.lowercased().hasPrefix("0x"), let integer = UInt64(unsigned.dropFirst(2), radix: 16) {
            return sign * LongDouble(integer)
        }
        return nil
    }

    static func isSpaceByte(_ byte: UInt8) -> Bool { byte == 0x20 || (0x09...0x0D).contains(byte) }

    /// Formats as Redis's INCRBYFLOAT reply: C's `%.17Lf` (17 digits after the point), then trailing
    /// zeros and a trailing point removed. So 10.5 + 0.1 gives "10.6", and 1.6 + 1e3 gives
    /// "1001.59999999999999998", exactly as Redis prints them.
    public static func formatLongDouble(_ value: LongDouble) -> String {
        if value.isInfinite { return value > 0 ? "inf" : "-inf" }
        let magnitude = abs(value)
        guard magnitude < 9.0e18 else { return formatHuman(Double(value)) }
        var whole = UInt64(magnitude.rounded(.towardZero))
        let fractionScale: LongDouble = 100_000_000_000_000_000  // 10^17, exact in a long double.
        var fraction = ((magnitude - LongDouble(whole)) * fractionScale).rounded()
        if fraction >= fractionScale {
            whole += 1
            fraction -= fractionScale
        }
        var digits = String(UInt64(fraction))
        digits = String(repeating: "0", count: 17 - digits.count) + digits
        while digits.last == "0" { digits.removeLast() }
        let sign = value < 0 && (whole != 0 || !digits.isEmpty) ? "-" : ""
        return sign + String(whole) + (digits.isEmpty ? "" : "." + digits)
    }
}
