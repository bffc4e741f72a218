/// An ordered byte store: the I/O boundary under a node's key-value state.
///
/// Cores read through it synchronously and never write to it: a core returns `StorageBatch`es and the
/// shell applies them (on a storage thread in production, at "fsync" time in simulation). Reads may see
/// a batch only after `apply` returns for it; cores cover the gap with their own record of pending
/// writes. Implementations: `MemoryKVStore` (tests and simulation) and `RocksKVStore` (CairnRocks).
public protocol KVStore: KVReadView, AnyObject {
    /// The value stored under `key`, if any.
    func get(_ key: [UInt8]) throws(StorageError) -> [UInt8]?

    // `scan(from:to:limit:)` comes from `KVReadView`: the live store reads as of now.

    /// The greatest key with `start <= key < end`, if any (a reverse seek: finding a log's last entry
    /// without reading the log).
    func lastKey(from start: [UInt8], before end: [UInt8]) throws(StorageError) -> [UInt8]?

    /// Applies `batches` in order, atomically as one write; when `sync` is true, returns only after the
    /// write is on stable storage (fsync).
    func apply(_ batches: [StorageBatch], sync: Bool) throws(StorageError)

    /// Makes every write applied so far durable (for `--fsync everysec`).
    func sync() throws(StorageError)

    /// A consistent read-only view of the store as it is now: later `apply` calls do not show in it.
    /// Cheap to take; it may be read on another thread while the store goes on taking writes (a
    /// partition snapshot is read this way, off the loop). Released when the last reference goes.
    func readView() -> any KVReadView
}

/// A point-in-time view of a `KVStore` (`KVStore.readView`).
public protocol KVReadView: Sendable {
    /// Up to `limit` pairs with `start <= key < end`, in ascending key order, as of the view's moment.
    func scan(from start: [UInt8], to end: [UInt8], limit: Int) throws(StorageError) -> [(key: [UInt8], value: [UInt8])]
}
