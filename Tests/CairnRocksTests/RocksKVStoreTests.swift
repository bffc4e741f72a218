import CairnCore
import CairnStorage
import Foundation
import Testing

@testable import CairnRocks

@Suite("RocksDB store")
struct RocksKVStoreTests {
    static func temporaryPath() -> String {
        let path = NSTemporaryDirectory() + "cairn-rocks-test-\(UUID().uuidString)"
        return path
    }

    /// Random puts, deletes and range deletes applied to RocksDB and to the in-memory model; every get
    /// and scan must agree, and so must a reopened database.
    @Test("agrees with the in-memory model under random operations", arguments: 0..<8 as Range<UInt64>)
    func differential(seed: UInt64) throws {
        let path = Self.temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let model = MemoryKVStore()
        var prng = SplitMix64(seed: seed)
        func randomKey() -> [UInt8] { (0..<(1 + prng.below(3))).map { _ in UInt8(97 + prng.below(4)) } }
        do {
            let rocks = try RocksKVStore(path: path)
            // Views taken along the way (RocksDB snapshots and model copies): frozen at their moment.
            var views: [(rocks: any KVReadView, model: any KVReadView)] = []
            for batchNumber in 1...40 {
                var mutations: [StorageMutation] = []
                for _ in 0..<(1 + prng.below(12)) {
                    switch prng.below(10) {
                    case 0: mutations.append(.deleteRange(start: randomKey(), end: randomKey()))
                    case 1...3: mutations.append(.delete(key: randomKey()))
                    default: mutations.append(.put(key: randomKey(), value: randomKey() + [UInt8(batchNumber)]))
                    }
                }
                mutations = mutations.filter {
                    if case .deleteRange(let start, let end) = $0 { return start.lexicographicallyPrecedes(end) }
                    return true
                }
                // As two batches in one write (the storage thread's group commit): the last write of a
                // key must still win.
                let split = prng.below(mutations.count + 1)
                let batches = [
                    StorageBatch(
                        sequence: BatchSequence(UInt64(2 * batchNumber)), mutations: Array(mutations[..<split])),
                    StorageBatch(
                        sequence: BatchSequence(UInt64(2 * batchNumber + 1)), mutations: Array(mutations[split...])),
                ]
                try rocks.apply(batches, sync: batchNumber % 2 == 0)
                try model.apply(batches, sync: true)
                let probe = randomKey()
                #expect(try rocks.get(probe) == model.get(probe), "seed \(seed) batch \(batchNumber)")
                let start = randomKey()
                let limit = 1 + prng.below(8)
                let fromRocks = try rocks.scan(from: start, to: [0xFF], limit: limit)
                let fromModel = try model.scan(from: start, to: [0xFF], limit: limit)
                #expect(fromRocks.map(\.key) == fromModel.map(\.key), "seed \(seed) batch \(batchNumber)")
                #expect(fromRocks.map(\.value) == fromModel.map(\.value), "seed \(seed) batch \(batchNumber)")
                let low = randomKey()
                let high = randomKey()
                #expect(
                    try rocks.lastKey(from: low, before: high) == model.lastKey(from: low, before: high),
                    "seed \(seed) batch \(batchNumber) lastKey")
                if batchNumber % 7 == 0 { views.append((rocks.readView(), model.readView())) }
                for (index, view) in views.enumerated() {
                    let fromRocksView = try view.rocks.scan(from: start, to: [0xFF], limit: limit)
                    let fromModelView = try view.model.scan(from: start, to: [0xFF], limit: limit)
                    #expect(fromRocksView.map(\.key) == fromModelView.map(\.key), "seed \(seed) view \(index)")
                    #expect(fromRocksView.map(\.value) == fromModelView.map(\.value), "seed \(seed) view \(index)")
                }
            }
            views.removeAll()  // RocksDB must not close with snapshots held.
            rocks.close()
        }
        let reopened = try RocksKVStore(path: path)
        let everything = try model.scan(from: [], to: [0xFF], limit: 10_000)
        let reread = try reopened.scan(from: [], to: [0xFF], limit: 10_000)
        #expect(reread.map(\.key) == everything.map(\.key), "seed \(seed) after reopen")
        #expect(reread.map(\.value) == everything.map(\.value), "seed \(seed) after reopen")
    }

    @Test("opening a path that cannot be a database fails with RocksDB's reason")
    func openFailure() {
        #expect(throws: StorageError.self) { try RocksKVStore(path: "/proc/cairn-cannot-exist/db") }
    }
}
