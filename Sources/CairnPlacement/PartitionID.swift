/// A partition: a contiguous range of slots, the unit of replication, leadership and movement
/// (DESIGN.md §2). Partitions are numbered from 0 in slot order; `PartitionTable` maps between slots and
/// partitions. Like the identifiers in `CairnCore`, it wraps its raw number so a partition cannot be
/// passed where a slot or a node is expected, and it prints as its bare number.
public struct PartitionID: RawRepresentable, Hashable, Comparable, Sendable, CustomStringConvertible,
    ExpressibleByIntegerLiteral
{
    public var rawValue: UInt16

    public init(rawValue: UInt16) {
        self.rawValue = rawValue
    }

    public init(_ rawValue: UInt16) {
        self.rawValue = rawValue
    }

    public init(integerLiteral value: UInt16) {
        self.rawValue = value
    }

    /// The partition's number as an array index (placement assignments are indexed by it).
    public var index: Int { Int(rawValue) }

    public static func < (lhs: PartitionID, rhs: PartitionID) -> Bool { lhs.rawValue < rhs.rawValue }

    // Written out because the generic `RawRepresentable` versions are slow in debug builds.
    public static func == (lhs: PartitionID, rhs: PartitionID) -> Bool { lhs.rawValue == rhs.rawValue }

    public func hash(into hasher: inout Hasher) { hasher.combine(rawValue) }

    public var description: String { String(rawValue) }
}
