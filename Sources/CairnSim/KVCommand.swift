/// A command of the simulated key-value state machine, as it travels in a Raft entry.
///
/// Encoding (all lengths one byte, so keys and values are at most 255 bytes):
/// `'w' key value`, `'c' key hasExpected expected new`, `'d' key`, each field as a length and bytes.
/// Values carry the client and operation number that wrote them, so every write is unique and the
/// history can tell which write a read saw.
enum KVCommand: Sendable, Equatable, CustomStringConvertible {
    case write(key: [UInt8], value: [UInt8])
    /// Sets `key` to `new` if it holds `expected` (nil: the key is absent).
    case compareAndSet(key: [UInt8], expected: [UInt8]?, new: [UInt8])
    case delete(key: [UInt8])

    var key: [UInt8] {
        switch self {
        case .write(let key, _), .compareAndSet(let key, _, _), .delete(let key): key
        }
    }

    func encoded() -> [UInt8] {
        var bytes: [UInt8] = []
        switch self {
        case .write(let key, let value):
            bytes.append(UInt8(ascii: "w"))
            Self.append(key, to: &bytes)
            Self.append(value, to: &bytes)
        case .compareAndSet(let key, let expected, let new):
            bytes.append(UInt8(ascii: "c"))
            Self.append(key, to: &bytes)
            bytes.append(expected == nil ? 0 : 1)
            Self.append(expected ?? [], to: &bytes)
            Self.append(new, to: &bytes)
        case .delete(let key):
            bytes.append(UInt8(ascii: "d"))
            Self.append(key, to: &bytes)
        }
        return bytes
    }

    /// Decodes a command, or nil if `bytes` is not one (only the simulator proposes, so nil is a bug).
    init?(decoding bytes: [UInt8]) {
        var reader = ByteReader(bytes: bytes)
        guard let tag = reader.byte(), let key = reader.field() else { return nil }
        switch tag {
        case UInt8(ascii: "w"):
            guard let value = reader.field() else { return nil }
            self = .write(key: key, value: value)
        case UInt8(ascii: "c"):
            guard let hasExpected = reader.byte(), let expected = reader.field(), let new = reader.field() else {
                return nil
            }
            self = .compareAndSet(key: key, expected: hasExpected == 1 ? expected : nil, new: new)
        case UInt8(ascii: "d"):
            self = .delete(key: key)
        default:
            return nil
        }
        guard reader.isAtEnd else { return nil }
    }

    private static func append(_ field: [UInt8], to bytes: inout [UInt8]) {
        precondition(field.count <= 255, "KVCommand fields are at most 255 bytes, got \(field.count)")
        bytes.append(UInt8(field.count))
        bytes.append(contentsOf: field)
    }

    var description: String {
        switch self {
        case .write(let key, let value): "set \(Text.bytes(key))=\(Text.bytes(value))"
        case .compareAndSet(let key, let expected, let new):
            "cas \(Text.bytes(key)) \(expected.map(Text.bytes) ?? "nil")->\(Text.bytes(new))"
        case .delete(let key): "del \(Text.bytes(key))"
        }
    }
}

/// Reads length-prefixed fields.
private struct ByteReader {
    let bytes: [UInt8]
    var position = 0

    var isAtEnd: Bool { position == bytes.count }

    mutating func byte() -> UInt8? {
        guard position < bytes.count else { return nil }
        position += 1
        return bytes[position - 1]
    }

    mutating func field() -> [UInt8]? {
        guard let length = byte(), position + Int(length) <= bytes.count else { return nil }
        position += Int(length)
        return Array(bytes[(position - Int(length))..<position])
    }
}

/// Text for traces.
enum Text {
    /// Bytes as text; the simulator's keys and values are printable ASCII.
    static func bytes(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

    static func value(_ value: [UInt8]?) -> String { value.map(Text.bytes) ?? "nil" }
}
