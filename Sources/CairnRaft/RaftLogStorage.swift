import CairnCore

/// The durable state of one node's member of one group, as the core reads it when it starts.
///
/// This is the I/O boundary of Raft. The core reads it once, in `RaftCore.init`, and never writes it:
/// every change arrives as `RaftOutput.writes`, which the shell applies (for many groups, in one write
/// batch and one fsync). A new group's storage holds a bootstrap snapshot at index 0 carrying the
/// initial configuration (`Snapshot.bootstrap`).
///
/// Implementations: `MemoryRaftLog` (tests, simulation); a RocksDB one in `CairnRocks`.
public protocol RaftLogStorage {
    /// The saved term, vote and commit index.
    func hardState() throws(RaftStorageError) -> HardState
    /// The saved snapshot, metadata and data.
    func snapshot() throws(RaftStorageError) -> Snapshot
    /// The index of the last saved entry (the snapshot's index if there are none after it).
    func lastIndex() throws(RaftStorageError) -> LogIndex
    /// The saved entries from `start` through `end` inclusive, which are all after the snapshot.
    func entries(from start: LogIndex, through end: LogIndex) throws(RaftStorageError) -> [Entry]
}

/// A `RaftLogStorage` in memory, with the same semantics as a durable one: apply writes in `DurableWrites`
/// field order. Used by tests and by the simulator (whose simulated disk decides what survives a crash).
public struct MemoryRaftLog: RaftLogStorage, Sendable, Equatable {
    public private(set) var savedHardState = HardState()
    public private(set) var savedSnapshot: Snapshot
    public private(set) var savedEntries: [Entry] = []

    /// Storage for a member of a new group whose first members are `configuration`.
    public init(bootstrap configuration: ConfigurationState) {
        self.savedSnapshot = .bootstrap(configuration)
    }

    /// Applies one output's writes, in the order the `DurableWrites` contract gives.
    public mutating func apply(_ writes: DurableWrites) {
        if let snapshot = writes.snapshot {
            let index = snapshot.metadata.index
            savedEntries.removeAll { $0.index <= index }
            if let first = savedEntries.first, first.index != index.next { savedEntries.removeAll() }
            savedSnapshot = snapshot
        }
        if let start = writes.truncateFrom {
            savedEntries.removeAll { $0.index >= start }
        }
        for entry in writes.entries {
            let expected = savedEntries.last?.index.next ?? savedSnapshot.metadata.index.next
            precondition(entry.index == expected, "MemoryRaftLog: appending \(entry.index), expected \(expected)")
            savedEntries.append(entry)
        }
        if let hardState = writes.hardState { savedHardState = hardState }
    }

    public func hardState() -> HardState { savedHardState }

    public func snapshot() -> Snapshot { savedSnapshot }

    public func lastIndex() -> LogIndex { savedEntries.last?.index ?? savedSnapshot.metadata.index }

    public func entries(from start: LogIndex, through end: LogIndex) throws(RaftStorageError) -> [Entry] {
        let selected = savedEntries.filter { $0.index >= start && $0.index <= end }
        guard selected.count == start.distance(to: end) + 1 || start > end else {
            throw .corrupt("entries \(start)...\(end) requested, \(selected.count) present")
        }
        return selected
    }
}
