import CairnCore
import CairnRESP

/// What the front of a reply buffer holds.
public enum ReplyStep: Equatable, Sendable {
    /// One whole reply ending at `end` (exclusive). `error` is the text of an error reply (such as
    /// `MOVED 3999 127.0.0.1:6381`), nil for any other reply.
    case reply(end: Int, error: String?)
    /// Only part of a reply; read more bytes and scan again from the same offset.
    case needMoreBytes
    /// The bytes are not RESP; the connection is beyond repair.
    case invalid(String)
}

/// Finds where each server reply ends, RESP2 and RESP3, without building values: the benchmark
/// only needs to know that a reply arrived and whether it is an error. `parse` builds a
/// `RESPValue` for the few replies whose content matters (HELLO, CLUSTER SLOTS, INFO).
///
/// Nested replies are walked with a counter of elements still expected, not by recursion, so a
/// server cannot make the client recurse deeply.
public enum ReplyScanner {
    /// Aggregates nested deeper than this are refused by `parse` (its recursion bound).
    public static let depthMax = 16
    /// Elements of one aggregate the scanner accepts.
    public static let elementsMax = 1 << 24

    @inline(__always)
    static func lineEnd(_ bytes: UnsafeBufferPointer<UInt8>, _ start: Int) -> Int? {
        var index = start
        while index + 1 < bytes.count {
            if bytes[index] == 0x0D { return index }
            index += 1
        }
        return nil
    }

    @inline(__always)
    static func integer(_ bytes: UnsafeBufferPointer<UInt8>, _ from: Int, _ to: Int) -> Int? {
        guard from < to else { return nil }
        var index = from
        var negative = false
        if bytes[index] == UInt8(ascii: "-") {
            negative = true
            index += 1
        }
        guard index < to, to - index <= 18 else { return nil }
        var value = 0
        while index < to {
            let digit = Int(bytes[index]) - 48
            guard digit >= 0 && digit <= 9 else { return nil }
            value = value * 10 + digit
            index += 1
        }
        return negative ? -value : value
    }

    /// Scans one reply starting at `start`.
    public static func scan(_ bytes: UnsafeBufferPointer<UInt8>, from start: Int) -> ReplyStep {
        var index = start
        var pending = 1
        var error: String?
        while pending > 0 {
            guard index < bytes.count else { return .needMoreBytes }
            let type = bytes[index]
            guard let end = lineEnd(bytes, index + 1) else { return .needMoreBytes }
            guard bytes[end + 1] == 0x0A else { return .invalid("a reply line does not end in CRLF") }
            let next = end + 2
            pending -= 1
            switch type {
            case UInt8(ascii: "+"), UInt8(ascii: ":"), UInt8(ascii: "_"), UInt8(ascii: ","), UInt8(ascii: "#"),
                UInt8(ascii: "("):
                index = next
            case UInt8(ascii: "-"):
                if index == start { error = text(bytes, index + 1, end) }
                index = next
            case UInt8(ascii: "$"), UInt8(ascii: "="), UInt8(ascii: "!"):
                guard let length = integer(bytes, index + 1, end) else { return .invalid("bad bulk length") }
                if length < 0 {
                    index = next
                } else {
                    guard next + length + 2 <= bytes.count else { return .needMoreBytes }
                    if type == UInt8(ascii: "!") && index == start { error = text(bytes, next, next + length) }
                    index = next + length + 2
                }
            case UInt8(ascii: "*"), UInt8(ascii: "~"), UInt8(ascii: ">"), UInt8(ascii: "%"), UInt8(ascii: "|"):
                guard let count = integer(bytes, index + 1, end), count <= elementsMax else {
                    return .invalid("bad aggregate length")
                }
                if count > 0 {
                    let isPairs = type == UInt8(ascii: "%") || type == UInt8(ascii: "|")
                    pending += isPairs ? 2 * count : count
                }
                // An attribute annotates the reply that follows it; that reply is still expected.
                if type == UInt8(ascii: "|") { pending += 1 }
                index = next
            default:
                return .invalid("unknown reply type byte \(type)")
            }
        }
        return .reply(end: index, error: error)
    }

    static func text(_ bytes: UnsafeBufferPointer<UInt8>, _ from: Int, _ to: Int) -> String {
        String(decoding: UnsafeBufferPointer(rebasing: bytes[from..<to]), as: UTF8.self)
    }

    /// The kind of an error reply: its first word (`ERR`, `MOVED`, `WRONGTYPE`, ...).
    public static func errorKind(_ text: String) -> String {
        String(text.prefix { $0 != " " })
    }

    /// Parses one whole reply into a value; nil if `bytes` does not start with one whole valid reply
    /// (call `scan` first to know).
    public static func parse(_ bytes: [UInt8], from start: Int = 0) -> (value: RESPValue, end: Int)? {
        bytes.withUnsafeBufferPointer { parseValue($0, start, depth: 0) }
    }

    static func parseValue(_ bytes: UnsafeBufferPointer<UInt8>, _ start: Int, depth: Int) -> (RESPValue, Int)? {
        guard depth < depthMax, start < bytes.count, let end = lineEnd(bytes, start + 1) else { return nil }
        let type = bytes[start]
        let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[(start + 1)..<end]), as: UTF8.self)
        let next = end + 2
        switch type {
        case UInt8(ascii: "+"): return (.simple(text), next)
        case UInt8(ascii: "-"): return (.error(text), next)
        case UInt8(ascii: ":"), UInt8(ascii: "("):
            guard let value = Int64(text) else { return nil }
            return (.integer(value), next)
        case UInt8(ascii: "_"): return (.null, next)
        case UInt8(ascii: ","): return (.double(Double(text) ?? .nan), next)
        case UInt8(ascii: "#"): return (.boolean(text == "t"), next)
        case UInt8(ascii: "$"), UInt8(ascii: "="), UInt8(ascii: "!"):
            guard let length = Int(text) else { return nil }
            if length < 0 { return (.null, next) }
            guard next + length + 2 <= bytes.count else { return nil }
            let data = Array(bytes[next..<(next + length)])
            if type == UInt8(ascii: "!") { return (.error(String(decoding: data, as: UTF8.self)), next + length + 2) }
            if type == UInt8(ascii: "=") {
                let body = String(decoding: data.dropFirst(4), as: UTF8.self)
                return (
                    .verbatim(format: String(decoding: data.prefix(3), as: UTF8.self), text: body), next + length + 2
                )
            }
            return (.bulk(data), next + length + 2)
        case UInt8(ascii: "*"), UInt8(ascii: "~"), UInt8(ascii: ">"), UInt8(ascii: "%"), UInt8(ascii: "|"):
            guard let count = Int(text), count <= elementsMax else { return nil }
            if count < 0 { return (.nullArray, next) }
            let isPairs = type == UInt8(ascii: "%") || type == UInt8(ascii: "|")
            var items: [RESPValue] = []
            var index = next
            for _ in 0..<(isPairs ? 2 * count : count) {
                guard let (item, after) = parseValue(bytes, index, depth: depth + 1) else { return nil }
                items.append(item)
                index = after
            }
            if type == UInt8(ascii: "|") { return parseValue(bytes, index, depth: depth + 1) }
            if type == UInt8(ascii: "%") {
                let pairs = stride(from: 0, to: items.count, by: 2).map { (items[$0], items[$0 + 1]) }
                return (.map(pairs), index)
            }
            return (type == UInt8(ascii: "~") ? .set(items) : .array(items), index)
        default:
            return nil
        }
    }
}
