/// An ordered byte store: the I/O boundary under a node's key-value state.
///
/// Cores read through it synchronously and never write to it: a core returns `StorageBatch`es and the
/// shell applies them (on a storage thread in production, at "fsync" time in simulation). Reads may see
/// a batch only after `apply` returns for it; cores cover the gap with their own record of pending
/// writes. Implementations: `MemoryKVStore` (tests and simulation) and `RocksKVStore` (CairnRocks).
public protocol KVStore: AnyObject, Sendable {
    /// The value stored under `key`, if any.
    func get(_ key: [UInt8]) throws(StorageError) -> [UInt8]?

    /// Up to `limit` pairs with `start <= key < end`, in ascending key order.
    func scan(from start: [UInt8], to end: [UInt8], limit: Int) throws(StorageError) -> [(key: [UInt8], value: [UInt8])]

    /// The greatest key with `start <= key < end`, if any (a reverse seek: finding a log's last entry
    /// without reading the log).
    func lastKey(from start: [UInt8], before end: [UInt8]) throws(StorageError) -> [UInt8]?

    /// Applies `batches` in order, atomically as one write; when `sync` is true, returns only after the
    /// write is on stable storage (fsync).
    func apply(_ batches: [StorageBatch], sync: Bool) throws(StorageError)

    /// Makes every write applied so far durable (for `--fsync everysec`).
    func sync() throws(StorageError)
}
