import CairnCore
import Testing

@testable import CairnStorage

@Suite("storage layout and records")
struct StorageLayoutTests {
    @Test("a record round-trips with and without an expiry time")
    func recordRoundTrip() throws {
        for record in [ValueRecord(value: Array("v".utf8)), ValueRecord(value: [], expiresAt: 1_700_000_000_123)] {
            #expect(try ValueRecord.decode(record.encoded(), key: []) == record)
        }
    }

    @Test("corrupt records are reported, never trusted")
    func corruptRecord() {
        #expect(throws: StorageError.self) { try ValueRecord.decode([], key: Array("k".utf8)) }
        #expect(throws: StorageError.self) { try ValueRecord.decode([9, 0], key: Array("k".utf8)) }
        #expect(throws: StorageError.self) { try ValueRecord.decode([1, 1, 0, 0], key: Array("k".utf8)) }
    }

    @Test("expiry index keys sort by time, then key")
    func expiryOrder() {
        let early = StorageLayout.expiryKey(Array("z".utf8), expiresAt: 5)
        let late = StorageLayout.expiryKey(Array("a".utf8), expiresAt: 256)
        #expect(early.lexicographicallyPrecedes(late))
        #expect(StorageLayout.parseExpiryKey(late)?.expiresAt == 256)
        #expect(StorageLayout.parseExpiryKey(late)?.key == Array("a".utf8))
        let range = StorageLayout.expiryRange(until: 256)
        #expect(early.lexicographicallyPrecedes(range.end) && !late.lexicographicallyPrecedes(range.end))
    }

    @Test("data keys of a partition fall inside its range and outside others")
    func partitionRange() {
        let key = StorageLayout.dataKey(Array("k".utf8), partition: 7)
        let range = StorageLayout.dataRange(partition: 7)
        #expect(!key.lexicographicallyPrecedes(range.start) && key.lexicographicallyPrecedes(range.end))
        let other = StorageLayout.dataRange(partition: 8)
        #expect(key.lexicographicallyPrecedes(other.start))
    }
}

@Suite("memory store")
struct MemoryKVStoreTests {
    @Test("scan returns keys in order within the range, up to the limit")
    func scanOrder() throws {
        let store = MemoryKVStore()
        let keys = ["b", "a", "d", "c"].map { Array($0.utf8) }
        try store.apply(
            [StorageBatch(sequence: BatchSequence(1), mutations: keys.map { .put(key: $0, value: $0) })], sync: true)
        let found = try store.scan(from: Array("b".utf8), to: Array("d".utf8), limit: 10).map(\.key)
        #expect(found == [Array("b".utf8), Array("c".utf8)])
        #expect(try store.scan(from: [], to: [0xFF], limit: 3).count == 3)
        try store.apply(
            [
                StorageBatch(
                    sequence: BatchSequence(2), mutations: [.deleteRange(start: Array("a".utf8), end: Array("c".utf8))])
            ], sync: true)
        #expect(try store.scan(from: [], to: [0xFF], limit: 10).map(\.key) == [Array("c".utf8), Array("d".utf8)])
    }
}
