import CRocksDB
import CairnStorage
import Synchronization

/// `KVStore` on RocksDB: one database per node. The only module that imports CRocksDB.
///
/// Every RocksDB error string is copied into `StorageError.rocksDB` and freed where the C call
/// returns. Thread safety: RocksDB's `DB` is safe for concurrent reads and writes, so the loop thread
/// reads while the storage thread writes; this class holds no other mutable state.
public final class RocksKVStore: KVStore, @unchecked Sendable {
    // Unchecked Sendable, audited: the stored handles are immutable after `init` and RocksDB documents
    // them as thread-safe; `deinit` runs when the last reference (on one thread) goes away.
    private let database: OpaquePointer
    private let options: OpaquePointer
    private let tableOptions: OpaquePointer
    private let readOptions: OpaquePointer
    private let syncWriteOptions: OpaquePointer
    private let plainWriteOptions: OpaquePointer
    /// Without sync, and failing at once rather than waiting when RocksDB would slow writes down
    /// (`applyUnlessStalled`).
    private let nonBlockingWriteOptions: OpaquePointer
    public let path: String
    private let closed = Mutex(false)

    /// Opens (creating if missing) the database at `path`.
    public init(path: String) throws(StorageError) {
        self.path = path
        options = rocksdb_options_create()
        rocksdb_options_set_create_if_missing(options, 1)
        rocksdb_options_increase_parallelism(options, 2)
        rocksdb_options_set_max_open_files(options, 512)
        // Writes come almost always from one thread at a time (the storage thread, or the loop when
        // nothing is queued for the storage thread; a group's creation also writes from the loop, and
        // RocksDB serializes writers), so the lock-free concurrent memtable insert only costs: the
        // single-writer path reuses its search hint. Measured with callgrind: the
        // memtable's key comparisons were the largest single cost of a SET.
        rocksdb_options_set_allow_concurrent_memtable_write(options, 0)
        rocksdb_options_set_enable_write_thread_adaptive_yield(options, 0)
        // Bloom filters on whole keys, in the memtable and in every table file: a lookup of a key that
        // is not there (a GET of an absent key, or a SET of a new one reading the old record) skips
        // the memtable's skip list and the files' blocks instead of searching each. Measured with
        // perf: those searches were the largest cost of such reads.
        rocksdb_options_set_memtable_prefix_bloom_size_ratio(options, 0.1)
        rocksdb_options_set_memtable_whole_key_filtering(options, 1)
        tableOptions = rocksdb_block_based_options_create()
        rocksdb_block_based_options_set_filter_policy(tableOptions, rocksdb_filterpolicy_create_bloom_full(10))
        rocksdb_block_based_options_set_whole_key_filtering(tableOptions, 1)
        rocksdb_options_set_block_based_table_factory(options, tableOptions)
        var error: UnsafeMutablePointer<CChar>?
        guard let opened = rocksdb_open(options, path, &error) else {
            let message = Self.take(&error) ?? "unknown error"
            rocksdb_options_destroy(options)
            rocksdb_block_based_options_destroy(tableOptions)
            throw .rocksDB(operation: "open \(path)", message: message)
        }
        database = opened
        readOptions = rocksdb_readoptions_create()
        syncWriteOptions = rocksdb_writeoptions_create()
        rocksdb_writeoptions_set_sync(syncWriteOptions, 1)
        plainWriteOptions = rocksdb_writeoptions_create()
        rocksdb_writeoptions_set_sync(plainWriteOptions, 0)
        nonBlockingWriteOptions = rocksdb_writeoptions_create()
        rocksdb_writeoptions_set_sync(nonBlockingWriteOptions, 0)
        rocksdb_writeoptions_set_no_slowdown(nonBlockingWriteOptions, 1)
    }

    /// Turns off RocksDB's per-thread performance counters for the calling thread. RocksDB counts
    /// every key comparison into a thread-local context by default, which callgrind showed costing
    /// as much as the comparisons themselves. Call once on each thread that uses the store.
    public static func disablePerformanceCountersOnThisThread() {
        rocksdb_set_perf_level(Int32(rocksdb_disable))
    }

    deinit {
        close()
        rocksdb_writeoptions_destroy(nonBlockingWriteOptions)
        rocksdb_writeoptions_destroy(plainWriteOptions)
        rocksdb_writeoptions_destroy(syncWriteOptions)
        rocksdb_readoptions_destroy(readOptions)
        rocksdb_options_destroy(options)
        rocksdb_block_based_options_destroy(tableOptions)
    }

    /// Closes the database (flushing memtables as RocksDB does on close). Idempotent; no call other
    /// than `close` may follow it.
    public func close() {
        let wasClosed = closed.withLock { state in
            defer { state = true }
            return state
        }
        if !wasClosed { rocksdb_close(database) }
    }

    /// Copies and frees a RocksDB error string, resetting the pointer for reuse.
    private static func take(_ error: inout UnsafeMutablePointer<CChar>?) -> String? {
        guard let pointer = error else { return nil }
        let message = String(cString: pointer)
        rocksdb_free(pointer)
        error = nil
        return message
    }

    public func get(_ key: [UInt8]) throws(StorageError) -> [UInt8]? {
        var error: UnsafeMutablePointer<CChar>?
        var length = 0
        let value = key.withUnsafeBufferPointer { keyBytes in
            keyBytes.withMemoryRebound(to: CChar.self) { keyChars in
                rocksdb_get(database, readOptions, keyChars.baseAddress, keyChars.count, &length, &error)
            }
        }
        if let message = Self.take(&error) { throw .rocksDB(operation: "get", message: message) }
        guard let value else { return nil }
        defer { rocksdb_free(value) }
        return Array(UnsafeRawBufferPointer(start: value, count: length))
    }

    public func scan(from start: [UInt8], to end: [UInt8], limit: Int) throws(StorageError) -> [(
        key: [UInt8], value: [UInt8]
    )] {
        try scan(from: start, to: end, limit: limit, options: readOptions)
    }

    /// A RocksDB snapshot: reads through it see the database as it was when it was taken.
    public func readView() -> any KVReadView { RocksReadView(store: self) }

    /// Whether `close` ran (a view taken before must not touch the database after).
    var isClosed: Bool { closed.withLock { $0 } }

    func createSnapshot() -> OpaquePointer { rocksdb_create_snapshot(database) }

    func releaseSnapshot(_ snapshot: OpaquePointer) { rocksdb_release_snapshot(database, snapshot) }

    func scan(from start: [UInt8], to end: [UInt8], limit: Int, options: OpaquePointer) throws(StorageError) -> [(
        key: [UInt8], value: [UInt8]
    )] {
        guard limit > 0 else { return [] }
        let iterator = rocksdb_create_iterator(database, options)!
        defer { rocksdb_iter_destroy(iterator) }
        start.withUnsafeBufferPointer { bytes in
            bytes.withMemoryRebound(to: CChar.self) { rocksdb_iter_seek(iterator, $0.baseAddress, $0.count) }
        }
        var result: [(key: [UInt8], value: [UInt8])] = []
        while result.count < limit, rocksdb_iter_valid(iterator) != 0 {
            var keyLength = 0
            var valueLength = 0
            let keyPointer = rocksdb_iter_key(iterator, &keyLength)!
            let key = Array(UnsafeRawBufferPointer(start: keyPointer, count: keyLength))
            guard key.lexicographicallyPrecedes(end) else { break }
            let valuePointer = rocksdb_iter_value(iterator, &valueLength)
            let value = valuePointer.map { Array(UnsafeRawBufferPointer(start: $0, count: valueLength)) } ?? []
            result.append((key, value))
            rocksdb_iter_next(iterator)
        }
        var error: UnsafeMutablePointer<CChar>?
        rocksdb_iter_get_error(iterator, &error)
        if let message = Self.take(&error) { throw .rocksDB(operation: "scan", message: message) }
        return result
    }

    public func lastKey(from start: [UInt8], before end: [UInt8]) throws(StorageError) -> [UInt8]? {
        let iterator = rocksdb_create_iterator(database, readOptions)!
        defer { rocksdb_iter_destroy(iterator) }
        Self.withChars(end) { rocksdb_iter_seek_for_prev(iterator, $0.baseAddress, $0.count) }
        var found: [UInt8]?
        while rocksdb_iter_valid(iterator) != 0 {
            var length = 0
            let pointer = rocksdb_iter_key(iterator, &length)!
            let key = Array(UnsafeRawBufferPointer(start: pointer, count: length))
            if key.lexicographicallyPrecedes(end) {
                if !key.lexicographicallyPrecedes(start) { found = key }
                break
            }
            rocksdb_iter_prev(iterator)  // Seek-for-prev lands on `end` itself when it exists.
        }
        var error: UnsafeMutablePointer<CChar>?
        rocksdb_iter_get_error(iterator, &error)
        if let message = Self.take(&error) { throw .rocksDB(operation: "seek_for_prev", message: message) }
        return found
    }

    public func apply(_ batches: [StorageBatch], sync: Bool) throws(StorageError) {
        let writeBatch = Self.writeBatch(of: batches)
        defer { rocksdb_writebatch_destroy(writeBatch) }
        var error: UnsafeMutablePointer<CChar>?
        rocksdb_write(database, sync ? syncWriteOptions : plainWriteOptions, writeBatch, &error)
        if let message = Self.take(&error) { throw .rocksDB(operation: "write", message: message) }
    }

    /// Writes `batches` without sync, as `apply`, unless RocksDB would first have to slow writes down
    /// or wait (memtables full, too many level-0 files): then writes nothing and returns false. For a
    /// thread that must not block (the event loop).
    public func applyUnlessStalled(_ batches: [StorageBatch]) throws(StorageError) -> Bool {
        let writeBatch = Self.writeBatch(of: batches)
        defer { rocksdb_writebatch_destroy(writeBatch) }
        var error: UnsafeMutablePointer<CChar>?
        rocksdb_write(database, nonBlockingWriteOptions, writeBatch, &error)
        guard let message = Self.take(&error) else { return true }
        // RocksDB's Status::Incomplete, which `no_slowdown` returns instead of waiting.
        if message.hasPrefix("Result incomplete") { return false }
        throw .rocksDB(operation: "write", message: message)
    }

    /// One RocksDB WriteBatch holding `batches`' mutations in order; the caller destroys it.
    private static func writeBatch(of batches: [StorageBatch]) -> OpaquePointer {
        let writeBatch = rocksdb_writebatch_create()!
        for batch in batches {
            for mutation in batch.mutations {
                switch mutation {
                case .put(let key, let value):
                    Self.withChars(key) { keyChars in
                        Self.withChars(value) { valueChars in
                            rocksdb_writebatch_put(
                                writeBatch, keyChars.baseAddress, keyChars.count, valueChars.baseAddress,
                                valueChars.count)
                        }
                    }
                case .delete(let key):
                    Self.withChars(key) { rocksdb_writebatch_delete(writeBatch, $0.baseAddress, $0.count) }
                case .deleteRange(let start, let end):
                    Self.withChars(start) { startChars in
                        Self.withChars(end) { endChars in
                            rocksdb_writebatch_delete_range(
                                writeBatch, startChars.baseAddress, startChars.count, endChars.baseAddress,
                                endChars.count)
                        }
                    }
                }
            }
        }
        return writeBatch
    }

    public func sync() throws(StorageError) {
        var error: UnsafeMutablePointer<CChar>?
        rocksdb_flush_wal(database, 1, &error)
        if let message = Self.take(&error) { throw .rocksDB(operation: "flush_wal", message: message) }
    }

    /// Passes `bytes` as `const char*` (Swift allows Int8/UInt8 aliasing). An empty array still gets a
    /// valid pointer, since RocksDB does not accept NULL even with length 0.
    private static func withChars<Result>(
        _ bytes: [UInt8], _ body: (UnsafeBufferPointer<CChar>) -> Result
    ) -> Result {
        if bytes.isEmpty {
            var zero: CChar = 0
            return withUnsafePointer(to: &zero) { body(UnsafeBufferPointer(start: $0, count: 0)) }
        }
        return bytes.withUnsafeBufferPointer { $0.withMemoryRebound(to: CChar.self, body) }
    }
}

/// A `RocksKVStore` as of one moment (a RocksDB snapshot). The shell releases every view before it
/// closes the store (RocksDB refuses to close with snapshots held); a view used after that fails.
final class RocksReadView: KVReadView, @unchecked Sendable {
    // Unchecked Sendable: the pointers are immutable after init, and RocksDB snapshots and read
    // options may be used from any thread.
    private let store: RocksKVStore
    private let snapshot: OpaquePointer
    private let options: OpaquePointer

    init(store: RocksKVStore) {
        self.store = store
        snapshot = store.createSnapshot()
        options = rocksdb_readoptions_create()
        rocksdb_readoptions_set_snapshot(options, snapshot)
    }

    deinit {
        rocksdb_readoptions_destroy(options)
        if !store.isClosed { store.releaseSnapshot(snapshot) }
    }

    func scan(from start: [UInt8], to end: [UInt8], limit: Int) throws(StorageError) -> [(
        key: [UInt8], value: [UInt8]
    )] {
        guard !store.isClosed else { throw .rocksDB(operation: "scan", message: "the store is closed") }
        return try store.scan(from: start, to: end, limit: limit, options: options)
    }
}
