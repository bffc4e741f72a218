/// Bytes used as a dictionary key, hashed in one pass.
///
/// Why: `[UInt8]`'s own `Hashable` feeds the hasher one byte at a time, which profiling showed as the
/// top cost of the write path (`Hasher.combine(UInt8)` on every pending-write and cache lookup).
/// This hashes the contiguous bytes at once; equality is still byte-wise.
public struct ByteKey: Hashable, Sendable {
    public let bytes: [UInt8]

    @inlinable public init(_ bytes: [UInt8]) {
        self.bytes = bytes
    }

    @inlinable public func hash(into hasher: inout Hasher) {
        bytes.withUnsafeBytes { hasher.combine(bytes: $0) }
    }

    @inlinable public static func == (lhs: ByteKey, rhs: ByteKey) -> Bool {
        lhs.bytes == rhs.bytes
    }
}
