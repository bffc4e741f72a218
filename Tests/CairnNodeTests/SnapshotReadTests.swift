import CairnCore
import CairnPlacement
import CairnStorage
import Testing

@testable import CairnNode

@Suite("snapshot reads off the loop: a store view plus the writes not yet durable")
struct SnapshotReadTests {
    static func record(_ text: String) -> ValueRecord { ValueRecord(value: Array(text.utf8)) }

    @Test("view + overlay taken at one moment equal the partition then, whatever the store takes after")
    func viewPlusOverlayIsThePartitionThen() throws {
        let store = MemoryKVStore()
        var keyspace = try Keyspace(store: store, cacheBytes: 1 << 20)
        let all = 0...16383
        // Durable: k0..k9 (k0..k4 in the store, k5..k9 in a batch still in flight).
        for index in 0..<10 { keyspace.put(Array("k\(index)".utf8), Self.record("v\(index)"), previous: nil) }
        let firstBatch = keyspace.closeBatch()
        let first = try #require(firstBatch)
        try store.apply([first], sync: true)
        keyspace.persisted(through: first.sequence)
        // Not durable yet: an update, a delete and a new key.
        keyspace.put(Array("k1".utf8), Self.record("updated"), previous: Self.record("v1"))
        keyspace.delete(Array("k2".utf8), previous: Self.record("v2"))
        keyspace.put(Array("k10".utf8), Self.record("new"), previous: nil)
        let secondBatch = keyspace.closeBatch()
        let second = try #require(secondBatch)

        let expected = try keyspace.records(inSlots: all)
        let overlay = keyspace.pendingRecords(inSlots: all)
        let view = store.readView()
        #expect(overlay.count == 3)
        // Later: the in-flight batch lands, and writes made after the moment land too.
        try store.apply([second], sync: true)
        keyspace.persisted(through: second.sequence)
        keyspace.put(Array("k3".utf8), Self.record("after"), previous: Self.record("v3"))
        keyspace.put(Array("k11".utf8), Self.record("after"), previous: nil)
        let thirdBatch = keyspace.closeBatch()
        let third = try #require(thirdBatch)
        try store.apply([third], sync: true)

        let read = try Keyspace.records(inSlots: all, store: view, overlay: overlay)
        #expect(read.map(\.key) == expected.map(\.key))
        #expect(read.map(\.record) == expected.map(\.record))
        #expect(read.contains { $0.key == Array("k1".utf8) && $0.record == Self.record("updated") })
        #expect(!read.contains { $0.key == Array("k2".utf8) })
        #expect(read.contains { $0.key == Array("k3".utf8) && $0.record == Self.record("v3") })
        #expect(!read.contains { $0.key == Array("k11".utf8) })
        // The live store moved on: reading it now (without the view) would differ.
        #expect(try Keyspace.records(inSlots: all, store: store, overlay: [:]).count != expected.count)
    }

    @Test("side entries: the view's pages merged with the overlay, deletes hidden, order kept")
    func mergedSideEntries() throws {
        let store = MemoryKVStore()
        func key(_ name: String) -> [UInt8] { [StorageLayout.idempotencyPrefix] + Array(name.utf8) }
        let durable = (0..<5000).map {
            StorageMutation.put(key: key("t" + String(String($0 + 100_000).dropFirst())), value: [1])
        }
        try store.apply([StorageBatch(sequence: BatchSequence(1), mutations: durable)], sync: true)
        let overlay: [ByteKey: [UInt8]?] = [
            ByteKey(key("t00001")): nil, ByteKey(key("t04999")): [2], ByteKey(key("t05000a")): [3],
        ]
        let view = store.readView()
        try store.apply(
            [StorageBatch(sequence: BatchSequence(2), mutations: [.delete(key: key("t00002"))])], sync: true)
        let merged = try SnapshotRead.merged(
            view, from: [StorageLayout.idempotencyPrefix], to: [StorageLayout.idempotencyPrefix + 1], overlay: overlay)
        #expect(merged.count == 5000)
        #expect(!merged.contains { $0.key == key("t00001") })
        #expect(merged.contains { $0.key == key("t00002") }, "deleted after the view was taken")
        #expect(merged.first { $0.key == key("t04999") }?.value == [2])
        #expect(merged.last?.key == key("t05000a"))
        #expect(zip(merged, merged.dropFirst()).allSatisfy { $0.key.lexicographicallyPrecedes($1.key) })
    }

    /// Method: keys on both sides of a slot range, some with expiry times, durable (and cached) or still
    /// in flight. The removal read counts the range as of the request; one range deletion then removes
    /// it: reads, the cache, the store and the counters must all agree, and keys outside must stay.
    @Test("a removal read counts a slot range's keys; one range deletion removes them, cached and pending ones too")
    func removalCountsThenDeletesARange() throws {
        let store = MemoryKVStore()
        var keyspace = try Keyspace(store: store, cacheBytes: 1 << 20)
        let range = 0...8191
        let keys = (0..<60).map { Array("key\($0)".utf8) }
        let inside = keys.filter { range.contains(Int(HashSlot.of($0))) }
        #expect(inside.count > 10 && inside.count < 50, "the range should split the keys")
        for (index, key) in keys.enumerated() {
            let record = ValueRecord(
                value: Array("v\(index)".utf8), expiresAt: index % 3 == 0 ? 4_000_000_000_000 : nil)
            keyspace.put(key, record, previous: nil)
        }
        let firstBatch = keyspace.closeBatch()
        let first = try #require(firstBatch)
        try store.apply([first], sync: true)
        keyspace.persisted(through: first.sequence)
        #expect(keyspace.cache.contains(inside[0]), "durable writes are cached (write-through)")
        // In flight: a key deleted inside the range, a key added inside it.
        let dropped = inside[1]
        let droppedRecord = try keyspace.get(dropped, now: 0)
        keyspace.delete(dropped, previous: try #require(droppedRecord))
        let added = (0..<1000).lazy.map { Array("new\($0)".utf8) }.first { range.contains(Int(HashSlot.of($0))) }!
        keyspace.put(added, Self.record("new"), previous: nil)
        let secondBatch = keyspace.closeBatch()
        let second = try #require(secondBatch)

        let expected = try keyspace.records(inSlots: range)
        let read = SnapshotRead(
            id: 7, slots: range, records: keyspace.pendingRecords(inSlots: range), purpose: .removal(partition: 0))
        let view = store.readView()
        keyspace.hideSlots(range)  // As the node does when it asks for the count.
        #expect(try keyspace.get(inside[0], now: 0) == nil, "hidden while being counted")
        #expect(try keyspace.get(added, now: 0) == nil, "hidden while being counted, pending or not")
        try store.apply([second], sync: true)  // Lands after the view was taken.
        guard case .partitionCounted(let counted) = read.build(from: view) else {
            Issue.record("a removal read must answer .partitionCounted")
            return
        }
        let counts = try counted.outcome.get()
        #expect(counted.id == 7)
        #expect(counts.keys == Int64(expected.count) && counts.keys == Int64(inside.count))
        let expiring = expected.filter { $0.record.expiresAt != nil }
        #expect(counts.expiring.map(\.key) == expiring.map(\.key))

        let keysBefore = keyspace.keyCount
        let expiringBefore = keyspace.expiringKeyCount
        keyspace.removeSlots(range, holding: counts)
        #expect(keyspace.keyCount == keysBefore - counts.keys)
        #expect(keyspace.expiringKeyCount == expiringBefore - Int64(expiring.count))
        #expect(!inside.contains { keyspace.cache.contains($0) }, "cached values of the range are dropped")
        #expect(keys.allSatisfy { inside.contains($0) || keyspace.cache.contains($0) }, "the others stay cached")
        for key in inside + [added] { #expect(try keyspace.get(key, now: 0) == nil) }
        keyspace.persisted(through: second.sequence)
        #expect(try keyspace.get(added, now: 0) == nil, "a write in flight must not come back through the cache")
        let thirdBatch = keyspace.closeBatch()
        let third = try #require(thirdBatch)
        try store.apply([third], sync: true)
        keyspace.persisted(through: third.sequence)
        #expect(try keyspace.records(inSlots: range).isEmpty)
        #expect(try Keyspace.records(inSlots: range, store: store, overlay: [:]).isEmpty)
        let index = try store.scan(from: [StorageLayout.expiryPrefix], to: [StorageLayout.expiryPrefix + 1], limit: 100)
        let indexed = index.compactMap { StorageLayout.parseExpiryKey($0.key)?.key }
        #expect(!indexed.contains { range.contains(Int(HashSlot.of($0))) }, "the range's expiry entries are deleted")
        #expect(indexed.count == keys.indices.filter { $0 % 3 == 0 && !inside.contains(keys[$0]) }.count)
        for key in keys where !range.contains(Int(HashSlot.of(key))) {
            #expect(try keyspace.get(key, now: 0) != nil, "a key outside the range must stay")
        }
        #expect(keyspace.keyCount == Int64(keys.count - inside.count))
        keyspace.checkInvariants()
    }
}
