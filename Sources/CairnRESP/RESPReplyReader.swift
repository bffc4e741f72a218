import CairnCore

/// Reads one RESP2 reply that Cairn itself encoded (a peer's reply to one part of a split command):
/// simple strings, errors, integers, bulk strings (null included) and arrays of those.
///
/// It returns nil on anything else or on truncated input; the caller turns that into an error reply.
public struct RESPReplyReader {
    let bytes: [UInt8]
    var offset = 0

    public init(_ bytes: [UInt8]) {
        self.bytes = bytes
    }

    public mutating func next() -> RESPValue? {
        next(depth: 0)
    }

    mutating func next(depth: Int) -> RESPValue? {
        guard depth < 8, offset < bytes.count else { return nil }
        let type = bytes[offset]
        offset += 1
        guard let line = readLine() else { return nil }
        switch type {
        case UInt8(ascii: "+"): return .simple(String(decoding: line, as: UTF8.self))
        case UInt8(ascii: "-"): return .error(String(decoding: line, as: UTF8.self))
        case UInt8(ascii: ":"): return Numbers.parseInt64(line).map { .integer($0) }
        case UInt8(ascii: "$"):
            guard let length = Numbers.parseInt64(line) else { return nil }
            if length < 0 { return .null }
            guard length <= Int64(bytes.count - offset - 2) else { return nil }
            let end = offset + Int(length)
            defer { offset = end + 2 }
            return .bulk(Array(bytes[offset..<end]))
        case UInt8(ascii: "*"):
            guard let count = Numbers.parseInt64(line) else { return nil }
            if count < 0 { return .nullArray }
            guard count <= Int64(bytes.count - offset) else { return nil }
            var items: [RESPValue] = []
            for _ in 0..<count {
                guard let item = next(depth: depth + 1) else { return nil }
                items.append(item)
            }
            return .array(items)
        default:
            return nil
        }
    }

    mutating func readLine() -> ArraySlice<UInt8>? {
        var index = offset
        while index + 1 < bytes.count {
            if bytes[index] == 13, bytes[index + 1] == 10 {
                defer { offset = index + 2 }
                return bytes[offset..<index]
            }
            index += 1
        }
        return nil
    }
}
