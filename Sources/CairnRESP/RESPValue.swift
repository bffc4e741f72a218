import CairnCore

/// The protocol version a connection speaks: RESP2 by default, RESP3 after `HELLO 3`.
public enum RESPVersion: Int, Sendable, Equatable {
    case resp2 = 2
    case resp3 = 3
}

/// A reply to a client, in RESP3's richer type system. Encoding for a RESP2 connection maps each
/// RESP3-only type onto the shape Redis uses for RESP2 (a map becomes a flat array, a double a bulk
/// string, a boolean an integer, null `$-1`).
///
/// Not `indirect`: the nested cases hold arrays, which are references already, and an indirect enum
/// boxes every payload on the heap (an allocation for each `.bulk` or `.integer` reply).
public enum RESPValue: Sendable, Equatable {
    case simple(String)
    /// An error; the text starts with its code (`ERR`, `WRONGTYPE`, ...).
    case error(String)
    case integer(Int64)
    case bulk([UInt8])
    /// The null bulk string (`$-1` in RESP2, `_` in RESP3): a missing value.
    case null
    /// The null array (`*-1` in RESP2, `_` in RESP3).
    case nullArray
    case array([RESPValue])
    case map([(RESPValue, RESPValue)])
    case set([RESPValue])
    case double(Double)
    case boolean(Bool)
    /// A verbatim string (`=` in RESP3) with its three-letter format, a bulk string in RESP2.
    case verbatim(format: String, text: String)

    public static let ok = RESPValue.simple("OK")

    public static func bulk(_ text: String) -> RESPValue { .bulk(Array(text.utf8)) }

    public static func == (lhs: RESPValue, rhs: RESPValue) -> Bool {
        lhs.encoded(.resp3) == rhs.encoded(.resp3)
    }

    /// Whether this reply is an error (for metrics by result).
    public var isError: Bool {
        if case .error = self { return true }
        return false
    }

    /// The bytes of this value for a connection speaking `version`.
    public func encoded(_ version: RESPVersion) -> [UInt8] {
        // The commonest replies share one encoding each: a new array per `+OK` of a SET was a heap
        // allocation per write.
        switch self {
        case .simple(let text) where text == "OK": return Self.okEncoded
        case .integer(0): return Self.zeroEncoded
        case .integer(1): return Self.oneEncoded
        case .null where version == .resp2: return Self.nullEncoded
        default: break
        }
        var bytes: [UInt8] = []
        encode(into: &bytes, version)
        return bytes
    }

    static let okEncoded = Array("+OK\r\n".utf8)
    static let zeroEncoded = Array(":0\r\n".utf8)
    static let oneEncoded = Array(":1\r\n".utf8)
    static let nullEncoded = Array("$-1\r\n".utf8)

    /// Appends the bytes of this value to `bytes`.
    public func encode(into bytes: inout [UInt8], _ version: RESPVersion) {
        switch self {
        case .simple(let text):
            Self.line(&bytes, "+", Self.singleLine(text))
        case .error(let text):
            Self.line(&bytes, "-", Self.singleLine(text))
        case .integer(let value):
            Self.header(&bytes, UInt8(ascii: ":"), Int64(value))
        case .bulk(let data):
            bytes.reserveCapacity(bytes.count + data.count + 16)
            Self.header(&bytes, UInt8(ascii: "$"), Int64(data.count))
            bytes.append(contentsOf: data)
            bytes.append(0x0D)
            bytes.append(0x0A)
        case .null:
            bytes.append(contentsOf: version == .resp3 ? Array("_\r\n".utf8) : Array("$-1\r\n".utf8))
        case .nullArray:
            bytes.append(contentsOf: version == .resp3 ? Array("_\r\n".utf8) : Array("*-1\r\n".utf8))
        case .array(let items):
            Self.line(&bytes, "*", String(items.count))
            for item in items { item.encode(into: &bytes, version) }
        case .set(let items):
            Self.line(&bytes, version == .resp3 ? "~" : "*", String(items.count))
            for item in items { item.encode(into: &bytes, version) }
        case .map(let pairs):
            if version == .resp3 {
                Self.line(&bytes, "%", String(pairs.count))
            } else {
                Self.line(&bytes, "*", String(pairs.count * 2))
            }
            for (key, value) in pairs {
                key.encode(into: &bytes, version)
                value.encode(into: &bytes, version)
            }
        case .double(let value):
            let text = Self.formatDouble(value)
            if version == .resp3 {
                Self.line(&bytes, ",", text)
            } else {
                RESPValue.bulk(text).encode(into: &bytes, version)
            }
        case .boolean(let value):
            if version == .resp3 {
                Self.line(&bytes, "#", value ? "t" : "f")
            } else {
                Self.line(&bytes, ":", value ? "1" : "0")
            }
        case .verbatim(let format, let text):
            if version == .resp3 {
                let payload = Array("\(format):\(text)".utf8)
                Self.line(&bytes, "=", String(payload.count))
                bytes.append(contentsOf: payload)
                bytes.append(0x0D)
                bytes.append(0x0A)
            } else {
                RESPValue.bulk(text).encode(into: &bytes, version)
            }
        }
    }

    /// Appends `prefix`, the decimal digits of `value` and CRLF, without building a String (hot path).
    static func header(_ bytes: inout [UInt8], _ prefix: UInt8, _ value: Int64) {
        bytes.append(prefix)
        if value < 0 { bytes.append(UInt8(ascii: "-")) }
        var magnitude = value.magnitude
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // Up to 24 digits, more than Int64 needs.
        var count = 0
        withUnsafeMutableBytes(of: &digits) { buffer in
            repeat {
                buffer[count] = UInt8(ascii: "0") + UInt8(magnitude % 10)
                magnitude /= 10
                count += 1
            } while magnitude > 0
            for index in stride(from: count - 1, through: 0, by: -1) { bytes.append(buffer[index]) }
        }
        bytes.append(0x0D)
        bytes.append(0x0A)
    }

    static func line(_ bytes: inout [UInt8], _ prefix: Character, _ text: String) {
        bytes.append(prefix.asciiValue!)
        bytes.append(contentsOf: text.utf8)
        // Byte by byte: `append(contentsOf: [0x0D, 0x0A])` allocated the literal on every reply.
        bytes.append(0x0D)
        bytes.append(0x0A)
    }

    /// Simple strings and errors cannot hold a line end; Redis replaces them with spaces, and so do we.
    static func singleLine(_ text: String) -> String {
        guard text.utf8.contains(where: { $0 == 0x0D || $0 == 0x0A }) else { return text }
        var scalars = String.UnicodeScalarView()
        for scalar in text.unicodeScalars { scalars.append(scalar == "\r" || scalar == "\n" ? " " : scalar) }
        return String(scalars)
    }

    /// Doubles as Redis prints them in replies: `inf`, `-inf`, `nan`, else the shortest round trip.
    static func formatDouble(_ value: Double) -> String {
        if value.isNaN { return "nan" }
        if value.isInfinite { return value > 0 ? "inf" : "-inf" }
        return Numbers.formatHuman(value)
    }
}
