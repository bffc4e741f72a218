/// How the 16384 slots are cut into partitions: `count` contiguous ranges, in slot order, whose sizes
/// differ by at most one slot.
///
/// Partition `p` starts at slot `⌊p × 16384 / count⌋`. That formula gives the most even split, makes
/// `partition(ofSlot:)` one multiplication and one division, and has a property worth keeping: doubling
/// `count` cuts every partition exactly in two (partition `p` becomes `2p` and `2p + 1`), so a cluster
/// can later split its partitions without moving a single slot between the halves' parents.
///
/// The table itself is not stored anywhere: it is fully determined by `count`, which the cluster map
/// records once, when the cluster is created.
public struct PartitionTable: Sendable, Equatable, CustomStringConvertible {
    /// The number of partitions a new cluster gets unless told otherwise: 128.
    ///
    /// Why 128, for clusters of 3 to about 30 nodes with 3 replicas each:
    /// - **Balance.** Placement balances whole replicas, so a node's share of the data is off the mean by
    ///   up to one replica. With 128 × 3 = 384 replicas, a 30-node cluster still has 12.8 replicas per
    ///   node (≥ 8 up to 48 nodes), so one replica is under 8% of a node's share; leaders (one per
    ///   partition) stay at 4 or 5 per node. With 64 partitions a 30-node cluster would have 6.4 replicas
    ///   and 2 or 3 leaders per node: a 40% spread of the write load.
    /// - **Movement.** A partition is what a join, a removal or a rebalance copies in one step (a Raft
    ///   snapshot). 1/128 of the data is small enough to move in minutes even for a large data set
    ///   (1 TiB total → 8 GiB per partition), and adding the (n+1)th node moves about 1/(n+1) of the
    ///   replicas, in many small steps rather than a few big ones.
    /// - **Cost.** Each partition is a Raft group on each of its replicas. A 3-node cluster runs 128
    ///   groups per node; their heartbeats are coalesced into one frame per peer per loop turn and their
    ///   log writes into one fsync (DESIGN.md §4), so the fixed cost per group is small. Systems with
    ///   similar designs (CockroachDB, TiKV) run thousands of groups per node.
    /// - **Room to grow.** Doubling the count splits each partition in two without moving slots between
    ///   partitions of the old table, so 128 is not a ceiling; 16384 (one slot each) is.
    public static let countDefault = 128
    /// The fewest partitions a table may have: everything in one partition.
    public static let countMin = 1
    /// The most partitions a table may have: one slot each.
    public static let countMax = HashSlot.count

    /// The number of partitions, in `countMin...countMax`.
    public let count: Int

    /// A table of `count` partitions.
    /// - Throws: `PartitionTableError.countOutOfRange` unless `count` is in `1...16384`.
    public init(count: Int = PartitionTable.countDefault) throws(PartitionTableError) {
        guard count >= Self.countMin, count <= Self.countMax else {
            throw .countOutOfRange(count: count, min: Self.countMin, max: Self.countMax)
        }
        self.count = count
    }

    /// Every partition, in slot order.
    public var partitions: [PartitionID] {
        (0..<count).map { PartitionID(UInt16($0)) }
    }

    /// The partition that holds `slot`, in constant time.
    /// - Precondition: `slot < 16384`.
    public func partition(ofSlot slot: UInt16) -> PartitionID {
        precondition(Int(slot) < HashSlot.count, "slot \(slot) is not below \(HashSlot.count)")
        // Partition p holds slot s iff ⌊p·S/n⌋ ≤ s < ⌊(p+1)·S/n⌋, i.e. p < (s+1)·n/S ≤ p + 1.
        let partition = ((Int(slot) + 1) * count - 1) / HashSlot.count
        return PartitionID(UInt16(partition))
    }

    /// The partition that holds `key`'s slot (`HashSlot.of(key)`).
    public func partition(ofKey key: [UInt8]) -> PartitionID {
        partition(ofSlot: HashSlot.of(key))
    }

    /// The slots of `partition`, first to last.
    /// - Precondition: `partition` is below `count`.
    public func slots(of partition: PartitionID) -> ClosedRange<UInt16> {
        precondition(partition.index < count, "partition \(partition) is not below the table's count \(count)")
        let first = partition.index * HashSlot.count / count
        let next = (partition.index + 1) * HashSlot.count / count
        return UInt16(first)...UInt16(next - 1)
    }

    public var description: String { "\(count) partitions of \(HashSlot.count / count)+ slots" }
}

/// Why a partition table could not be made. The text names the value, the rule, and what to do.
public enum PartitionTableError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The partition count is outside `min...max`.
    case countOutOfRange(count: Int, min: Int, max: Int)

    public var description: String {
        switch self {
        case .countOutOfRange(let count, let min, let max):
            "partition count (\(count)) must be in \(min)...\(max): each partition is at least one of the "
                + "\(HashSlot.count) hash slots; \(PartitionTable.countDefault) is the default"
        }
    }
}
