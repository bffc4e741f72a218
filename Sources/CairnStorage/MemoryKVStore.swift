import CairnCore

/// The in-memory model of `KVStore`: the reference that `RocksKVStore` is checked against, and the
/// disk of the simulator. Keys are kept in a sorted array, so scans are binary searches.
///
/// `sync` and the `sync` flag do nothing here: a simulated disk that loses unsynced writes on a crash
/// wraps this store rather than complicating it.
public final class MemoryKVStore: KVStore, @unchecked Sendable {
    // Unchecked Sendable: the store is used by one thread at a time in tests and in the simulator;
    // the protocol requires Sendable because the production store is shared with the storage thread.
    private var keys: [[UInt8]] = []
    private var values: [[UInt8]: [UInt8]] = [:]

    public init() {}

    /// Number of keys stored (for tests).
    public var count: Int { keys.count }

    public func get(_ key: [UInt8]) throws(StorageError) -> [UInt8]? {
        values[key]
    }

    public func scan(from start: [UInt8], to end: [UInt8], limit: Int) throws(StorageError) -> [(
        key: [UInt8], value: [UInt8]
    )] {
        try MemoryReadView(keys: keys, values: values).scan(from: start, to: end, limit: limit)
    }

    /// A copy of the keys and values (copy on write: O(1) now, the copy is paid by the next write).
    public func readView() -> any KVReadView { MemoryReadView(keys: keys, values: values) }

    public func lastKey(from start: [UInt8], before end: [UInt8]) throws(StorageError) -> [UInt8]? {
        let index = lowerBound(end) - 1
        guard index >= 0, !keys[index].lexicographicallyPrecedes(start) else { return nil }
        return keys[index]
    }

    public func apply(_ batches: [StorageBatch], sync: Bool) throws(StorageError) {
        for batch in batches {
            for mutation in batch.mutations {
                switch mutation {
                case .put(let key, let value):
                    if values.updateValue(value, forKey: key) == nil {
                        keys.insert(key, at: lowerBound(key))
                    }
                case .delete(let key):
                    if values.removeValue(forKey: key) != nil {
                        keys.remove(at: lowerBound(key))
                    }
                case .deleteRange(let start, let end):
                    let from = lowerBound(start)
                    var to = from
                    while to < keys.count, keys[to].lexicographicallyPrecedes(end) {
                        values.removeValue(forKey: keys[to])
                        to += 1
                    }
                    keys.removeSubrange(from..<to)
                }
            }
        }
    }

    public func sync() throws(StorageError) {}

    /// The index of the first key not less than `key`.
    private func lowerBound(_ key: [UInt8]) -> Int { MemoryReadView.lowerBound(key, in: keys) }
}

/// A `MemoryKVStore` frozen at one moment.
struct MemoryReadView: KVReadView {
    let keys: [[UInt8]]
    let values: [[UInt8]: [UInt8]]

    func scan(from start: [UInt8], to end: [UInt8], limit: Int) throws(StorageError) -> [(
        key: [UInt8], value: [UInt8]
    )] {
        var low = Self.lowerBound(start, in: keys)
        var result: [(key: [UInt8], value: [UInt8])] = []
        while low < keys.count, result.count < limit, keys[low].lexicographicallyPrecedes(end) {
            result.append((keys[low], values[keys[low]]!))
            low += 1
        }
        return result
    }

    /// The position of the first key not below `key` in sorted `keys`.
    static func lowerBound(_ key: [UInt8], in keys: [[UInt8]]) -> Int {
        var low = 0
        var high = keys.count
        while low < high {
            let middle = (low + high) / 2
            if keys[middle].lexicographicallyPrecedes(key) { low = middle + 1 } else { high = middle }
        }
        return low
    }
}
