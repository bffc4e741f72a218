/// Appends fixed-width big-endian integers and length-prefixed bytes: the building block of every
/// binary encoding Cairn writes (storage records, Raft entries, peer frames).
public struct ByteWriter: Sendable {
    public private(set) var bytes: [UInt8]

    public init(capacity: Int = 64) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    public mutating func write(_ value: UInt8) { bytes.append(value) }

    /// Appends `value` as two big-endian bytes.
    public mutating func write(_ value: UInt16) { bytes.appendBigEndian(value) }

    public mutating func write(_ value: UInt32) { bytes.appendBigEndian(value) }

    public mutating func write(_ value: UInt64) { bytes.appendBigEndian(value) }

    /// A u32 length, then the bytes.
    public mutating func writeLengthPrefixed(_ data: [UInt8]) {
        precondition(data.count <= Int(UInt32.max), "length-prefixed field of \(data.count) bytes")
        write(UInt32(data.count))
        bytes.append(contentsOf: data)
    }

    /// The bytes as they are, with no length (the last field of a record).
    public mutating func writeRest(_ data: [UInt8]) { bytes.append(contentsOf: data) }
}

/// Why bytes could not be decoded: says which field, and what was there.
public enum DecodeError: Error, Equatable, Sendable, CustomStringConvertible {
    case truncated(field: String, needed: Int, available: Int)
    case invalid(field: String, value: UInt64)
    /// A count or length is larger than the limit Cairn allows for it (a `Limits` value), whatever the
    /// bytes that follow: the decoder refuses before it allocates anything for it.
    case tooLarge(field: String, value: UInt64, limit: Int)

    public var description: String {
        switch self {
        case .truncated(let field, let needed, let available):
            "truncated \(field): needed \(needed) bytes, \(available) left"
        case .invalid(let field, let value):
            "invalid \(field): \(value)"
        case .tooLarge(let field, let value, let limit):
            "\(field) is \(value), more than the limit of \(limit)"
        }
    }
}

/// Reads what `ByteWriter` wrote, checking every length against what is left (input may be corrupt).
public struct ByteReader: Sendable {
    let bytes: [UInt8]
    public private(set) var offset = 0

    public init(_ bytes: [UInt8]) {
        self.bytes = bytes
    }

    public var remaining: Int { bytes.count - offset }

    mutating func take(_ count: Int, _ field: String) throws(DecodeError) -> ArraySlice<UInt8> {
        guard count >= 0, count <= remaining else {
            throw .truncated(field: field, needed: count, available: remaining)
        }
        defer { offset += count }
        return bytes[offset..<(offset + count)]
    }

    public mutating func readUInt8(_ field: String) throws(DecodeError) -> UInt8 {
        try take(1, field).first!
    }

    public mutating func readUInt16(_ field: String) throws(DecodeError) -> UInt16 {
        try readBigEndian(field)
    }

    public mutating func readUInt32(_ field: String) throws(DecodeError) -> UInt32 {
        try readBigEndian(field)
    }

    public mutating func readUInt64(_ field: String) throws(DecodeError) -> UInt64 {
        try readBigEndian(field)
    }

    /// A big-endian integer read in place, without the slice (and its retain and release) of `take`.
    private mutating func readBigEndian<T: FixedWidthInteger>(_ field: String) throws(DecodeError) -> T {
        let size = MemoryLayout<T>.size
        guard remaining >= size else { throw .truncated(field: field, needed: size, available: remaining) }
        defer { offset += size }
        return bytes.loadBigEndian(at: offset)
    }

    /// Exactly `count` bytes, after checking that they are there (so a corrupt count cannot allocate more
    /// than the input holds).
    public mutating func readBytes(_ count: Int, _ field: String) throws(DecodeError) -> [UInt8] {
        Array(try take(count, field))
    }

    public mutating func readLengthPrefixed(_ field: String) throws(DecodeError) -> [UInt8] {
        guard remaining >= 4 else { throw .truncated(field: field + " length", needed: 4, available: remaining) }
        let count = try readUInt32(field)
        return Array(try take(Int(count), field))
    }

    public mutating func readRest() -> [UInt8] {
        defer { offset = bytes.count }
        return Array(bytes[offset...])
    }

    /// Fails unless every byte was read: trailing bytes mean the record is not what was expected.
    public func expectEnd(_ field: String) throws(DecodeError) {
        guard remaining == 0 else { throw .invalid(field: field + " trailing bytes", value: UInt64(remaining)) }
    }
}

extension Array where Element == UInt8 {
    /// Appends `value`'s big-endian bytes in one append: appending them one at a time checked the
    /// array's uniqueness and capacity per byte, about 2 % of a cluster node's loop thread under SET
    /// load (perf).
    @inlinable
    public mutating func appendBigEndian<T: FixedWidthInteger>(_ value: T) {
        Swift.withUnsafeBytes(of: value.bigEndian) { append(contentsOf: $0) }
    }

    /// The big-endian integer at `offset`.
    /// - Precondition: the array holds `MemoryLayout<T>.size` bytes from `offset`.
    @inlinable
    public func loadBigEndian<T: FixedWidthInteger>(as type: T.Type = T.self, at offset: Int) -> T {
        precondition(
            offset >= 0 && offset + MemoryLayout<T>.size <= count,
            "reading \(MemoryLayout<T>.size) bytes at \(offset) of \(count)")
        return T(bigEndian: withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: T.self) })
    }
}
