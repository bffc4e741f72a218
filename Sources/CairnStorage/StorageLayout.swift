import CairnCore

/// How a node's state maps onto the ordered byte store. One place defines it, so the layout can be
/// versioned and every reader agrees.
///
/// ```
/// 0x00 name                          node metadata (format version, keyspace counters)
/// 0x01 slot(u16 BE) key              a key's record: a partition (a slot range) is one contiguous range
/// 0x02 expiresAt(u64 BE) key         expiry index: keys in order of expiry time, for the expiry cycle
/// 0x03 group(u64 BE) ...             Raft state of each group (`KVRaftLog`)
/// 0x04 group(u64 BE) token           an idempotent write's outcome: applied time (u64 BE) + reply
/// 0x05 group(u64 BE) time(u64 BE) token   idempotency tokens by applied time, for pruning the window
/// ```
/// Why the expiry index: the background cycle must find expired keys without scanning the keyspace,
/// and after a restart without rebuilding anything in memory. Entries may go stale (a key's TTL
/// changed while a batch was in flight); the cycle checks the record and drops stale entries.
public enum StorageLayout {
    public static let metaPrefix: UInt8 = 0x00
    public static let dataPrefix: UInt8 = 0x01
    public static let expiryPrefix: UInt8 = 0x02
    /// Raft logs, hard states and snapshots of every group (see `KVRaftLog` in CairnNode).
    public static let raftPrefix: UInt8 = 0x03

    /// Idempotency tokens of each partition group and their replies (`NodeCore+Idempotency`).
    public static let idempotencyPrefix: UInt8 = 0x04
    /// The same tokens ordered by applied time, to find those past the window.
    public static let idempotencyTimePrefix: UInt8 = 0x05

    /// The partition of a single-node keyspace. Partitions arrive with clustering.
    public static let defaultPartition: UInt16 = 0

    public static func metaKey(_ name: String) -> [UInt8] { [metaPrefix] + Array(name.utf8) }

    public static func dataKey(_ key: [UInt8], partition: UInt16 = defaultPartition) -> [UInt8] {
        // Reserved before the first byte: an array literal would be one allocation, and growing it a second.
        var bytes: [UInt8] = []
        bytes.reserveCapacity(3 + key.count)
        bytes.append(dataPrefix)
        bytes.append(UInt8(partition >> 8))
        bytes.append(UInt8(partition & 0xFF))
        bytes.append(contentsOf: key)
        return bytes
    }

    /// The user key inside a data key.
    public static func userKey(fromDataKey dataKey: [UInt8]) -> [UInt8] { Array(dataKey.dropFirst(3)) }

    /// The first and one-past-last data keys of a partition.
    public static func dataRange(partition: UInt16 = defaultPartition) -> (start: [UInt8], end: [UInt8]) {
        let start: [UInt8] = [dataPrefix, UInt8(partition >> 8), UInt8(partition & 0xFF)]
        let next = UInt32(partition) + 1
        let end: [UInt8] =
            next > UInt32(UInt16.max) ? [dataPrefix + 1] : [dataPrefix, UInt8(next >> 8), UInt8(next & 0xFF)]
        return (start, end)
    }

    public static func expiryKey(_ key: [UInt8], expiresAt: Int64) -> [UInt8] {
        precondition(expiresAt >= 0, "expiry time \(expiresAt) must not be negative")
        var bytes: [UInt8] = []
        bytes.reserveCapacity(9 + key.count)
        bytes.append(expiryPrefix)
        bytes.appendBigEndian(UInt64(expiresAt))
        bytes.append(contentsOf: key)
        return bytes
    }

    /// Splits an expiry index key into its time and user key; nil if it is not one.
    public static func parseExpiryKey(_ bytes: [UInt8]) -> (expiresAt: Int64, key: [UInt8])? {
        guard bytes.count >= 9, bytes[0] == expiryPrefix else { return nil }
        let time = bytes.loadBigEndian(as: UInt64.self, at: 1)
        guard time <= UInt64(Int64.max) else { return nil }
        return (Int64(time), Array(bytes[9...]))
    }

    /// Expiry index keys for times `< until`.
    public static func expiryRange(until: Int64) -> (start: [UInt8], end: [UInt8]) {
        var end: [UInt8] = [expiryPrefix]
        end.appendBigEndian(UInt64(max(0, until)))
        return ([expiryPrefix], end)
    }

    /// Every key's record, all hash slots.
    public static let keyspaceDataRange: (start: [UInt8], end: [UInt8]) = ([dataPrefix], [dataPrefix + 1])

    /// Everything that holds keyspace data (records and expiry index), for FLUSHALL.
    public static let keyspaceRange: (start: [UInt8], end: [UInt8]) = ([dataPrefix], [expiryPrefix + 1])
}
