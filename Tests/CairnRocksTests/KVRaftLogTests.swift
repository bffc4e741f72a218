import CairnCore
import CairnNode
import CairnRaft
import CairnStorage
import Foundation
import Testing

@testable import CairnRocks

@Suite("Raft log storage over RocksDB")
struct KVRaftLogTests {
    static let groups: [GroupID] = [1, 7, 300]
    static let configuration = ConfigurationState(voters: [1, 2, 3], learners: [4])

    /// A random, valid `DurableWrites` for a log that `model` holds.
    static func randomWrites(_ model: MemoryRaftLog, _ prng: inout SplitMix64) -> DurableWrites {
        var writes = DurableWrites()
        let snapshotIndex = model.savedSnapshot.metadata.index
        let last = model.lastIndex()
        var next = last.next
        var term = model.savedEntries.last?.term ?? model.savedSnapshot.metadata.term
        switch prng.below(6) {
        case 0 where last > snapshotIndex:
            let cut = LogIndex(
                rawValue: snapshotIndex.rawValue + 1 + UInt64(prng.below(Int(last.rawValue - snapshotIndex.rawValue))))
            writes.truncateFrom = cut
            next = cut
            term = Term(rawValue: term.rawValue + 1)
        case 1 where last > snapshotIndex:
            let index = LogIndex(
                rawValue: snapshotIndex.rawValue + 1 + UInt64(prng.below(Int(last.rawValue - snapshotIndex.rawValue))))
            let entryTerm = model.savedEntries.first { $0.index == index }!.term
            let metadata = SnapshotMetadata(index: index, term: entryTerm, configuration: configuration)
            writes.snapshot = Snapshot(
                metadata: metadata, data: (0..<prng.below(40)).map { _ in UInt8(prng.below(256)) })
            return writes
        default:
            break
        }
        for _ in 0..<prng.below(5) {
            let kind: Entry.Kind =
                switch prng.below(4) {
                case 0: .empty
                case 1: .configuration(ConfigurationState(voters: [1, 2], learners: [3], outgoingVoters: [1, 2, 3]))
                default: .command((0..<prng.below(30)).map { _ in UInt8(prng.below(256)) })
                }
            writes.entries.append(Entry(term: term, index: next, kind: kind))
            next = next.next
        }
        if prng.below(2) == 0 {
            writes.hardState = HardState(
                term: Term(rawValue: term.rawValue + 1),
                vote: prng.below(2) == 0 ? nil : NodeID(rawValue: UInt64(prng.below(4))),
                commit: LogIndex(rawValue: UInt64(prng.below(Int(next.rawValue) + 1))))
        }
        return writes
    }

    static func expectSame(_ log: KVRaftLog, _ model: MemoryRaftLog, _ context: String) throws {
        #expect(try log.hardState() == model.savedHardState, "\(context)")
        #expect(try log.snapshot() == model.savedSnapshot, "\(context)")
        #expect(try log.lastIndex() == model.lastIndex(), "\(context)")
        let first = model.savedSnapshot.metadata.index.next
        #expect(try log.entries(from: first, through: model.lastIndex()) == model.savedEntries, "\(context)")
    }

    /// Many groups' writes go into one batch per round, to one store; each group must read back exactly
    /// what the in-memory model of its log holds, before and after reopening the database.
    @Test("agrees with MemoryRaftLog for many groups sharing one database", arguments: 0..<6 as Range<UInt64>)
    func differential(seed: UInt64) throws {
        let path = NSTemporaryDirectory() + "cairn-raftlog-test-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: path) }
        var prng = SplitMix64(seed: seed)
        var models = Self.groups.map { _ in MemoryRaftLog(bootstrap: Self.configuration) }
        do {
            let store = try RocksKVStore(path: path)
            let bootstrap = Self.groups.flatMap { KVRaftLog.bootstrap(Self.configuration, group: $0) }
            try store.apply([StorageBatch(sequence: BatchSequence(1), mutations: bootstrap)], sync: true)
            for round in 0..<60 {
                var mutations: [StorageMutation] = []
                for (position, group) in Self.groups.enumerated() {
                    let writes = Self.randomWrites(models[position], &prng)
                    models[position].apply(writes)
                    mutations += KVRaftLog.mutations(for: writes, group: group)
                }
                try store.apply(
                    [StorageBatch(sequence: BatchSequence(UInt64(round + 2)), mutations: mutations)],
                    sync: round % 3 == 0)
                for (position, group) in Self.groups.enumerated() {
                    try Self.expectSame(
                        KVRaftLog(store: store, group: group), models[position],
                        "seed \(seed) round \(round) group \(group)")
                }
            }
            store.close()
        }
        let reopened = try RocksKVStore(path: path)
        for (position, group) in Self.groups.enumerated() {
            try Self.expectSame(KVRaftLog(store: reopened, group: group), models[position], "seed \(seed) after reopen")
        }
    }

    @Test("a Raft core restarts from the store alone")
    func coreRestartsFromStore() throws {
        let store = MemoryKVStore()
        let group: GroupID = 5
        try store.apply(
            [
                StorageBatch(
                    sequence: BatchSequence(1), mutations: KVRaftLog.bootstrap(Self.configuration, group: group))
            ], sync: true)
        var writes = DurableWrites()
        writes.entries = [Entry(term: 2, index: 1, kind: .empty), Entry(term: 2, index: 2, kind: .command([7]))]
        writes.hardState = HardState(term: 2, vote: 1, commit: 1)
        try store.apply(
            [StorageBatch(sequence: BatchSequence(2), mutations: KVRaftLog.mutations(for: writes, group: group))],
            sync: true)
        let log = KVRaftLog(store: store, group: group)
        #expect(try log.hardState() == HardState(term: 2, vote: 1, commit: 1))
        #expect(try log.lastIndex() == 2)
        #expect(try log.entries(from: 1, through: 2) == writes.entries)
        #expect(throws: RaftStorageError.self) { try KVRaftLog(store: store, group: 6).snapshot() }
    }

    @Test("corrupt Raft records decode to errors, never crashes", arguments: 0..<200 as Range<UInt64>)
    func corruptRecords(seed: UInt64) throws {
        var prng = SplitMix64(seed: seed)
        let bytes = (0..<prng.below(48)).map { _ in UInt8(prng.below(256)) }
        _ = try? RaftCodec.decodeEntry(bytes)
        _ = try? RaftCodec.decodeHardState(bytes)
        _ = try? RaftCodec.decodeSnapshot(bytes)
        let entry = Entry(term: 3, index: 9, kind: .configuration(Self.configuration))
        #expect(try RaftCodec.decodeEntry(RaftCodec.encode(entry)) == entry)
        let cut = RaftCodec.encode(entry).prefix(prng.below(20))
        #expect(throws: DecodeError.self) { try RaftCodec.decodeEntry(Array(cut)) }
    }
}
