import CairnCore
import CairnRaft
import CairnStorage

/// Raft log storage for many groups in one ordered byte store (RocksDB in production).
///
/// Why one store: a node hosts many groups, and their new entries must share one write batch and one
/// fsync per loop turn. `mutations(for:group:)` turns one group's `DurableWrites` into plain
/// `StorageMutation`s, so the shell can put the writes of every group (and of the key-value data) in
/// the same `StorageBatch`. Reading goes through `KVRaftLog`, the `RaftLogStorage` a core starts from.
///
/// Layout (under `StorageLayout.raftPrefix`, group as u64 big-endian so a group is one range):
/// ```
/// 0x03 group 0x01              hard state
/// 0x03 group 0x02              snapshot (metadata and data)
/// 0x03 group 0x03 index(u64)   one entry
/// ```
public struct KVRaftLog: RaftLogStorage {
    let store: any KVStore
    public let group: GroupID

    public init(store: any KVStore, group: GroupID) {
        self.store = store
        self.group = group
    }

    static let hardStateTag: UInt8 = 0x01
    static let snapshotTag: UInt8 = 0x02
    static let entryTag: UInt8 = 0x03

    static func key(_ group: GroupID, _ tag: UInt8) -> [UInt8] {
        var bytes: [UInt8] = [StorageLayout.raftPrefix]
        bytes.appendBigEndian(group.rawValue)
        bytes.append(tag)
        return bytes
    }

    static func entryKey(_ group: GroupID, _ index: LogIndex) -> [UInt8] {
        var bytes = key(group, entryTag)
        bytes.appendBigEndian(index.rawValue)
        return bytes
    }

    /// The writes that create a new group's storage: a bootstrap snapshot holding its first members.
    public static func bootstrap(_ configuration: ConfigurationState, group: GroupID) -> [StorageMutation] {
        [.put(key: key(group, snapshotTag), value: RaftCodec.encode(Snapshot.bootstrap(configuration)))]
    }

    /// One group's durable writes as storage mutations, in the order the `DurableWrites` contract gives.
    public static func mutations(for writes: DurableWrites, group: GroupID) -> [StorageMutation] {
        var mutations: [StorageMutation] = []
        if let snapshot = writes.snapshot {
            mutations.append(.put(key: key(group, snapshotTag), value: RaftCodec.encode(snapshot)))
            mutations.append(
                .deleteRange(start: entryKey(group, 0), end: entryKey(group, snapshot.metadata.index.next)))
        }
        if let start = writes.truncateFrom {
            mutations.append(.deleteRange(start: entryKey(group, start), end: key(group, entryTag + 1)))
        }
        for entry in writes.entries {
            mutations.append(.put(key: entryKey(group, entry.index), value: RaftCodec.encode(entry)))
        }
        if let hardState = writes.hardState {
            mutations.append(.put(key: key(group, hardStateTag), value: RaftCodec.encode(hardState)))
        }
        return mutations
    }

    /// Every key of a group, for removing a group from a node.
    public static func range(of group: GroupID) -> (start: [UInt8], end: [UInt8]) {
        (key(group, 0), key(group, 0xFF))
    }

    func read(_ key: [UInt8]) throws(RaftStorageError) -> [UInt8]? {
        do {
            return try store.get(key)
        } catch {
            throw .unavailable(error.description)
        }
    }

    public func hardState() throws(RaftStorageError) -> HardState {
        guard let bytes = try read(Self.key(group, Self.hardStateTag)) else { return HardState() }
        do {
            return try RaftCodec.decodeHardState(bytes)
        } catch {
            throw .corrupt("group \(group) hard state: \(error)")
        }
    }

    public func snapshot() throws(RaftStorageError) -> Snapshot {
        guard let bytes = try read(Self.key(group, Self.snapshotTag)) else {
            throw .corrupt("group \(group) has no snapshot; a group's storage starts with a bootstrap snapshot")
        }
        do {
            return try RaftCodec.decodeSnapshot(bytes)
        } catch {
            throw .corrupt("group \(group) snapshot: \(error)")
        }
    }

    public func lastIndex() throws(RaftStorageError) -> LogIndex {
        let snapshotIndex = try snapshot().metadata.index
        let last: [UInt8]?
        do {
            last = try store.lastKey(from: Self.entryKey(group, 0), before: Self.key(group, Self.entryTag + 1))
        } catch {
            throw .unavailable(error.description)
        }
        guard let last else { return snapshotIndex }
        return max(snapshotIndex, LogIndex(rawValue: last.loadBigEndian(as: UInt64.self, at: last.count - 8)))
    }

    public func entries(from start: LogIndex, through end: LogIndex) throws(RaftStorageError) -> [Entry] {
        guard start <= end else { return [] }
        let count = Int(start.distance(to: end)) + 1
        let pairs: [(key: [UInt8], value: [UInt8])]
        do {
            pairs = try store.scan(from: Self.entryKey(group, start), to: Self.entryKey(group, end.next), limit: count)
        } catch {
            throw .unavailable(error.description)
        }
        guard pairs.count == count else {
            throw .corrupt("group \(group): entries \(start)...\(end) requested, \(pairs.count) present")
        }
        var entries: [Entry] = []
        entries.reserveCapacity(count)
        for (offset, pair) in pairs.enumerated() {
            let entry: Entry
            do {
                entry = try RaftCodec.decodeEntry(pair.value)
            } catch {
                throw .corrupt("group \(group) entry at \(start.rawValue + UInt64(offset)): \(error)")
            }
            guard entry.index.rawValue == start.rawValue + UInt64(offset) else {
                throw .corrupt(
                    "group \(group): entry stored under index \(start.rawValue + UInt64(offset)) says \(entry.index)")
            }
            entries.append(entry)
        }
        return entries
    }
}
