/// Bytes used as a dictionary key: hashed once, in one pass, and compared by hash before bytes.
///
/// Why: profiling the write and read paths showed `[UInt8]` as a dictionary key costing most of a
/// lookup. Its own `Hashable` feeds the hasher one byte at a time, and Swift's dictionary compares
/// keys (not stored hashes) along a probe sequence, so every probe chased the array's heap buffer
/// into a cache miss. This key hashes the contiguous bytes at once and keeps the hash inline, so a
/// probe that cannot match is rejected without touching the bytes.
///
/// The hash comes from `Hasher`, which is seeded per process: use `ByteKey` only for in-memory
/// lookups, never for anything persisted, sent, or iterated to build output.
public struct ByteKey: Hashable, Sendable {
    public let bytes: [UInt8]
    @usableFromInline let hash: Int

    @inlinable public init(_ bytes: [UInt8]) {
        self.bytes = bytes
        var hasher = Hasher()
        bytes.withUnsafeBytes { hasher.combine(bytes: $0) }
        self.hash = hasher.finalize()
    }

    @inlinable public func hash(into hasher: inout Hasher) {
        hasher.combine(hash)
    }

    @inlinable public static func == (lhs: ByteKey, rhs: ByteKey) -> Bool {
        lhs.hash == rhs.hash && lhs.bytes == rhs.bytes
    }
}
