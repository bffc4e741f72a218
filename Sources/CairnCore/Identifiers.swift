/// Identifiers shared by the protocol cores. Each wraps a raw integer so that a `Term` cannot be passed
/// where a `LogIndex` is expected (STYLE.md §2.3), and each prints as its bare number so traces and
/// golden files stay short.

/// A node's stable identity within the cluster. Zero is never a valid node.
public struct NodeID: RawRepresentable, Hashable, Comparable, Sendable, CustomStringConvertible,
    ExpressibleByIntegerLiteral
{
    public var rawValue: UInt64

    public init(rawValue: UInt64) {
        self.rawValue = rawValue
    }

    public init(_ rawValue: UInt64) {
        self.rawValue = rawValue
    }

    public init(integerLiteral value: UInt64) {
        self.rawValue = value
    }

    public static func < (lhs: NodeID, rhs: NodeID) -> Bool { lhs.rawValue < rhs.rawValue }

    // Written out because the generic `RawRepresentable` versions are slow in debug builds.
    public static func == (lhs: NodeID, rhs: NodeID) -> Bool { lhs.rawValue == rhs.rawValue }

    public func hash(into hasher: inout Hasher) { hasher.combine(rawValue) }

    public var description: String { String(rawValue) }
}

/// A Raft term: a logical clock that increases with every election (Raft §5.1).
public struct Term: RawRepresentable, Hashable, Comparable, Sendable, CustomStringConvertible,
    ExpressibleByIntegerLiteral
{
    public var rawValue: UInt64

    public init(rawValue: UInt64) {
        self.rawValue = rawValue
    }

    public init(_ rawValue: UInt64) {
        self.rawValue = rawValue
    }

    public init(integerLiteral value: UInt64) {
        self.rawValue = value
    }

    /// The term after this one (a candidate's new term).
    public var next: Term { Term(rawValue + 1) }

    public static func < (lhs: Term, rhs: Term) -> Bool { lhs.rawValue < rhs.rawValue }

    // Written out because the generic `RawRepresentable` versions are slow in debug builds.
    public static func == (lhs: Term, rhs: Term) -> Bool { lhs.rawValue == rhs.rawValue }

    public func hash(into hasher: inout Hasher) { hasher.combine(rawValue) }

    public var description: String { String(rawValue) }
}

/// The position of an entry in a Raft log. Index 0 is the empty prefix; the first real entry is 1.
public struct LogIndex: RawRepresentable, Hashable, Comparable, Sendable, CustomStringConvertible,
    ExpressibleByIntegerLiteral, Strideable
{
    public var rawValue: UInt64

    public init(rawValue: UInt64) {
        self.rawValue = rawValue
    }

    public init(_ rawValue: UInt64) {
        self.rawValue = rawValue
    }

    public init(integerLiteral value: UInt64) {
        self.rawValue = value
    }

    /// The index after this one.
    public var next: LogIndex { LogIndex(rawValue + 1) }

    /// The index before this one.
    /// - Precondition: this is not index 0.
    public var previous: LogIndex {
        precondition(rawValue > 0, "LogIndex 0 has no previous index")
        return LogIndex(rawValue - 1)
    }

    public static func < (lhs: LogIndex, rhs: LogIndex) -> Bool { lhs.rawValue < rhs.rawValue }

    // Written out because the generic `RawRepresentable` versions are slow in debug builds.
    public static func == (lhs: LogIndex, rhs: LogIndex) -> Bool { lhs.rawValue == rhs.rawValue }

    public func hash(into hasher: inout Hasher) { hasher.combine(rawValue) }

    public func distance(to other: LogIndex) -> Int { Int(other.rawValue) - Int(rawValue) }

    public func advanced(by n: Int) -> LogIndex { LogIndex(UInt64(Int(rawValue) + n)) }

    public var description: String { String(rawValue) }
}

/// A Raft group: the unit of replication. Many groups share one node (multi-raft); one core is one group.
public struct GroupID: RawRepresentable, Hashable, Comparable, Sendable, CustomStringConvertible,
    ExpressibleByIntegerLiteral
{
    public var rawValue: UInt64

    public init(rawValue: UInt64) {
        self.rawValue = rawValue
    }

    public init(_ rawValue: UInt64) {
        self.rawValue = rawValue
    }

    public init(integerLiteral value: UInt64) {
        self.rawValue = value
    }

    public static func < (lhs: GroupID, rhs: GroupID) -> Bool { lhs.rawValue < rhs.rawValue }

    // Written out because the generic `RawRepresentable` versions are slow in debug builds.
    public static func == (lhs: GroupID, rhs: GroupID) -> Bool { lhs.rawValue == rhs.rawValue }

    public func hash(into hasher: inout Hasher) { hasher.combine(rawValue) }

    public var description: String { String(rawValue) }
}
