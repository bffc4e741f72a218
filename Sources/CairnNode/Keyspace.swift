import CairnCore
import CairnPlacement
import CairnStorage

/// The key-value state of a node as commands see it: the durable store, the writes not yet durable,
/// and the read cache, combined into one view.
///
/// Why writes wait here: the shell makes a turn's writes durable on the storage thread, and a later
/// command (in the same pipeline, or from another client) must already see them. `pending` holds each
/// written key's newest record with the batch that carries it; reads look there first, then in the
/// cache, then in the store. Data written here comes from applying committed Raft entries, which are
/// already durable in the log: a crash before the data batch lands is repaired by re-applying them.
///
/// Invariants (checked in `checkInvariants`): every pending write belongs to an open or in-flight
/// batch; the open batch's sequence is above every durable one; counters are never negative.
public struct Keyspace: Sendable {
    struct PendingWrite: Sendable {
        var record: ValueRecord?
        var sequence: BatchSequence
    }

    let store: any KVStore
    public private(set) var cache: ReadCache
    private var pending: [ByteKey: PendingWrite] = [:]
    /// Keys written by each batch not yet durable, so `persisted` touches only what it must.
    private var keysByBatch = PerBatch<[ByteKey]>()
    /// Side entries (not key-value data: idempotency records) written but not yet durable, by storage
    /// key, with the batch that carries them; `auxGet` reads them before the store.
    private var auxPending: [ByteKey: PendingAux] = [:]
    struct PendingAux: Sendable {
        var value: [UInt8]?
        var sequence: BatchSequence
    }
    /// Slot ranges of copies moved away: hidden from reads while their keys are counted
    /// (`hideSlots`, sequence nil), then until the batch of their range deletion
    /// (`removeSlots(_:holding:)`) is durable. The store still holds the keys meanwhile.
    private var removedRanges: [(slots: ClosedRange<Int>, sequence: BatchSequence?)] = []
    private(set) var openBatch: StorageBatch
    public private(set) var durableThrough: BatchSequence
    /// Whether reading an expired key deletes it. Only while applying a committed entry: every replica
    /// then deletes the same keys at the same (entry) time. A read served outside the log must not write.
    var deletesExpired = false

    /// Keys stored, expired-but-not-yet-removed ones included (DBSIZE, INFO keyspace).
    public private(set) var keyCount: Int64 = 0
    /// Keys stored with an expiry time.
    public private(set) var expiringKeyCount: Int64 = 0
    private var countsChanged = false
    /// Keys removed because their time passed (lazily on access, or by the expiry cycle).
    public private(set) var expiredKeys: UInt64 = 0

    static let countsMetaKey = StorageLayout.metaKey("keyspace-counts")
    static let formatMetaKey = StorageLayout.metaKey("format")
    /// 3: groups' applied indexes in shared records (`NodeCore.appliedBucketKey`). A store of format
    /// 2 is read and moved on; an older Cairn refuses a store of format 3 (it would not find the applied
    /// indexes and would apply every entry again).
    static let formatVersion: [UInt8] = [3]
    static let readableFormats: [[UInt8]] = [[2], [3]]

    /// Opens the keyspace over `store`, reading the persisted counters.
    /// - Throws: `StorageError` when the store cannot be read or was written by an unknown format.
    public init(store: any KVStore, cacheBytes: Int) throws(StorageError) {
        self.store = store
        self.cache = ReadCache(capacityBytes: cacheBytes)
        self.durableThrough = BatchSequence(0)
        self.openBatch = StorageBatch(sequence: BatchSequence(1), needsSync: false)
        if let format = try store.get(Self.formatMetaKey) {
            guard Self.readableFormats.contains(format) else {
                throw .corruptRecord(
                    key: Self.formatMetaKey,
                    reason:
                        "data format \(format) is not one of \(Self.readableFormats); was it written by a newer Cairn?")
            }
            if format != Self.formatVersion {
                appendRaw([.put(key: Self.formatMetaKey, value: Self.formatVersion)])
            }
        } else {
            appendRaw([.put(key: Self.formatMetaKey, value: Self.formatVersion)])
        }
        if let counts = try store.get(Self.countsMetaKey) {
            guard counts.count == 16 else {
                throw .corruptRecord(key: Self.countsMetaKey, reason: "\(counts.count) bytes, expected 16")
            }
            keyCount = Int64(bitPattern: counts.loadBigEndian(as: UInt64.self, at: 0))
            expiringKeyCount = Int64(bitPattern: counts.loadBigEndian(as: UInt64.self, at: 8))
        }
    }

    /// Whether any write is waiting for a batch to close or to become durable.
    public var hasPendingWrites: Bool { !pending.isEmpty || !openBatch.mutations.isEmpty }

    /// Number of keys with writes not yet durable.
    public var pendingKeyCount: Int { pending.count }

    // MARK: Reading

    /// The live record of `key`: nil when absent or expired. An expired record found here is deleted
    /// at once (lazy expiry, as Redis does), so a following write sees the key as absent.
    public mutating func get(_ key: [UInt8], now: Int64) throws(CommandError) -> ValueRecord? {
        guard let record = try stored(key, now: now) else { return nil }
        if record.isExpired(at: now) {
            if deletesExpired {
                delete(key, previous: record)
                expiredKeys += 1
            }
            return nil
        }
        return record
    }

    /// The stored record of `key`, expired or not, from the pending writes, the cache or the store.
    mutating func stored(_ key: [UInt8], now: Int64) throws(CommandError) -> ValueRecord? {
        if !removedRanges.isEmpty, isRemoved(key) { return nil }
        let hashed = ByteKey(key)
        if !pending.isEmpty, let write = pending[hashed] {
            return write.record
        }
        if let record = cache.get(hashed, now: now) { return record }
        do {
            guard let bytes = try store.get(Self.dataKey(key)) else { return nil }
            let record = try ValueRecord.decode(bytes, key: key)
            cache.put(hashed, record)
            return record
        } catch {
            throw .storage(error)
        }
    }

    // MARK: Writing

    /// Stores `record` under `key`. `previous` is the key's live record as `get` returned it.
    public mutating func put(_ key: [UInt8], _ record: ValueRecord, previous: ValueRecord?) {
        if let old = previous?.expiresAt, old != record.expiresAt {
            openBatch.mutations.append(.delete(key: StorageLayout.expiryKey(key, expiresAt: old)))
        }
        if let new = record.expiresAt, new != previous?.expiresAt {
            openBatch.mutations.append(.put(key: StorageLayout.expiryKey(key, expiresAt: new), value: []))
        }
        openBatch.mutations.append(.put(key: Self.dataKey(key), value: record.encoded()))
        if previous == nil { keyCount += 1 }
        expiringKeyCount += (record.expiresAt != nil ? 1 : 0) - (previous?.expiresAt != nil ? 1 : 0)
        countsChanged = true
        remember(key, record)
    }

    /// Deletes `key`, whose live (or just-expired) record is `previous`.
    public mutating func delete(_ key: [UInt8], previous: ValueRecord) {
        if let old = previous.expiresAt {
            openBatch.mutations.append(.delete(key: StorageLayout.expiryKey(key, expiresAt: old)))
            expiringKeyCount -= 1
        }
        openBatch.mutations.append(.delete(key: Self.dataKey(key)))
        keyCount -= 1
        countsChanged = true
        remember(key, nil)
    }

    private mutating func remember(_ key: [UInt8], _ record: ValueRecord?) {
        let hashed = ByteKey(key)
        let previous = pending.updateValue(PendingWrite(record: record, sequence: openBatch.sequence), forKey: hashed)
        if previous?.sequence != openBatch.sequence {
            keysByBatch.modify(openBatch.sequence, default: []) { $0.append(hashed) }
        }
    }

    /// The storage key of a user key: its hash slot first, so a partition's keys are one range.
    static func dataKey(_ key: [UInt8]) -> [UInt8] {
        StorageLayout.dataKey(key, partition: HashSlot.of(key))
    }

    /// Writes a side entry (a storage key outside the keyspace's data) that later reads must see at
    /// once: in the open batch, and in `auxPending` until durable.
    mutating func auxPut(_ storageKey: [UInt8], _ value: [UInt8]?) {
        auxPending[ByteKey(storageKey)] = PendingAux(value: value, sequence: openBatch.sequence)
        openBatch.mutations.append(value.map { .put(key: storageKey, value: $0) } ?? .delete(key: storageKey))
    }

    /// A side entry as of now: written but not durable yet, else from the store.
    func auxGet(_ storageKey: [UInt8]) throws(StorageError) -> [UInt8]? {
        if let write = auxPending[ByteKey(storageKey)] { return write.value }
        return try store.get(storageKey)
    }

    /// One page of side entries as of now (the store merged with writes not yet durable), in key order:
    /// every entry in `[start, next)`, where `next` is where the following page starts (nil: the range
    /// is done). The page reads at most `limit` keys from the store; it may hold fewer entries (keys
    /// deleted but not yet durable are left out) or more (keys written but not yet durable are added).
    /// Page by `next`, never by the page's size: the merged view is the same on every replica that
    /// applied the same entries, whatever each one has made durable so far.
    func auxScan(from start: [UInt8], to end: [UInt8], limit: Int) throws(StorageError) -> (
        entries: [(key: [UInt8], value: [UInt8])], next: [UInt8]?
    ) {
        let stored = try store.scan(from: start, to: end, limit: limit)
        let next = stored.count < limit ? nil : stored.last.map { $0.key + [0] }
        let upper = next ?? end
        var found: [(key: [UInt8], value: [UInt8])] = []
        for (key, value) in stored where auxPending.isEmpty || auxPending[ByteKey(key)] == nil {
            found.append((key, value))
        }
        var merged = false
        for (key, write) in auxPending
        where !key.bytes.lexicographicallyPrecedes(start) && key.bytes.lexicographicallyPrecedes(upper) {
            guard let value = write.value else { continue }
            found.append((key.bytes, value))
            merged = true
        }
        if merged { found.sort { $0.key.lexicographicallyPrecedes($1.key) } }
        return (found, next)
    }

    /// Adds writes that are not key-value data (Raft state, node metadata) to the open batch. They make
    /// the batch one that must be fsync'd before it counts as durable, unless `needsSync` is false: what
    /// applying committed entries wrote (applied indexes), which applying them again rebuilds.
    mutating func appendRaw(_ mutations: [StorageMutation], needsSync: Bool = true) {
        openBatch.mutations.append(contentsOf: mutations)
        if needsSync { openBatch.needsSync = true }
    }

    /// Deletes every key in the hash slots `slots` (FLUSHALL of one partition, or before restoring its
    /// snapshot), one key at a time so that counters, the expiry index and readers all stay right. A
    /// copy moved away is removed with one range deletion instead (`removeSlots(_:holding:)`).
    mutating func removeSlots(_ slots: ClosedRange<Int>) throws(StorageError) {
        for (key, record) in try records(inSlots: slots) {
            cache.remove(key)
            delete(key, previous: record)
        }
    }

    /// Deletes every key in the hash slots `slots` with one range deletion, given how many keys they
    /// hold as of now and which of them have an expiry time (whose index entries are deleted too):
    /// counted off the loop, with nothing written to these slots since (`PartitionRemoval`). The slots
    /// stay hidden until the batch is durable.
    mutating func removeSlots(_ slots: ClosedRange<Int>, holding counts: RemovalCount) {
        // Not rebuilt by any log entry: the copy's group is gone.
        openBatch.needsSync = true
        openBatch.mutations.append(
            .deleteRange(
                start: StorageLayout.dataRange(partition: UInt16(slots.lowerBound)).start,
                end: StorageLayout.dataRange(partition: UInt16(slots.upperBound)).end))
        // The expiry index is ordered by time, not slot: its entries go one by one (only keys with a TTL).
        for (key, expiresAt) in counts.expiring {
            openBatch.mutations.append(.delete(key: StorageLayout.expiryKey(key, expiresAt: expiresAt)))
        }
        keyCount -= counts.keys
        expiringKeyCount -= Int64(counts.expiring.count)
        countsChanged = true
        // Writes still on their way to the store are deleted by the range too.
        let written = pending.keys.filter { slots.contains(Int(HashSlot.of($0.bytes))) }
        for key in written { remember(key.bytes, nil) }
        cache.removeAll(inSlots: slots)
        removedRanges.removeAll { $0.slots == slots }
        removedRanges.append((slots, openBatch.sequence))
    }

    /// Hides the keys in `slots` from reads and scans (a copy moved away, until its removal is durable).
    mutating func hideSlots(_ slots: ClosedRange<Int>) {
        guard !removedRanges.contains(where: { $0.slots == slots }) else { return }
        removedRanges.append((slots, nil))
    }

    /// Whether `key` lies in a range deleted by a batch not yet durable (its pending writes aside).
    private func isRemoved(_ key: [UInt8]) -> Bool {
        let slot = Int(HashSlot.of(key))
        return removedRanges.contains { $0.slots.contains(slot) }
    }

    /// Every record in the hash slots `slots`, expired or not, as of now: the store merged with the
    /// writes not yet durable, in storage order (slot, then key). A partition's whole state, for a
    /// snapshot or for removing it.
    func records(inSlots slots: ClosedRange<Int>) throws(StorageError) -> [(key: [UInt8], record: ValueRecord)] {
        try Self.records(inSlots: slots, store: store, overlay: pending.isEmpty ? [:] : pendingRecords(inSlots: slots))
    }

    /// The writes not yet durable to keys in `slots`: the newest record of each key, nil for a delete.
    func pendingRecords(inSlots slots: ClosedRange<Int>) -> [ByteKey: ValueRecord?] {
        var found: [ByteKey: ValueRecord?] = [:]
        for (key, write) in pending where slots.contains(Int(HashSlot.of(key.bytes))) { found[key] = write.record }
        return found
    }

    /// The side entries not yet durable with keys in `start..<end` (nil for a delete).
    func pendingAux(from start: [UInt8], to end: [UInt8]) -> [ByteKey: [UInt8]?] {
        var found: [ByteKey: [UInt8]?] = [:]
        for (key, write) in auxPending
        where !key.bytes.lexicographicallyPrecedes(start) && key.bytes.lexicographicallyPrecedes(end) {
            found[key] = write.value
        }
        return found
    }

    /// The records in `slots` of `store` (the live store, or a view of it taken earlier) with
    /// `overlay` (writes the store does not hold yet) laid over them, in storage order.
    static func records(
        inSlots slots: ClosedRange<Int>, store: any KVReadView, overlay: [ByteKey: ValueRecord?]
    ) throws(StorageError) -> [(key: [UInt8], record: ValueRecord)] {
        var start = StorageLayout.dataRange(partition: UInt16(slots.lowerBound)).start
        let end = StorageLayout.dataRange(partition: UInt16(slots.upperBound)).end
        var found: [(dataKey: [UInt8], key: [UInt8], record: ValueRecord)] = []
        while true {
            let chunk = try store.scan(from: start, to: end, limit: 4096)
            for (dataKey, value) in chunk {
                let key = StorageLayout.userKey(fromDataKey: dataKey)
                guard overlay.isEmpty || overlay[ByteKey(key)] == nil else { continue }
                found.append((dataKey, key, try ValueRecord.decode(value, key: key)))
            }
            guard chunk.count == 4096, let last = chunk.last else { break }
            start = last.key + [0]
        }
        var merged = false
        for (key, record) in overlay {
            guard let record else { continue }
            found.append((Self.dataKey(key.bytes), key.bytes, record))
            merged = true
        }
        if merged { found.sort { $0.dataKey.lexicographicallyPrecedes($1.dataKey) } }
        return found.map { ($0.key, $0.record) }
    }

    /// Deletes an expiry index entry whose key this node does not hold (derived data, local only).
    mutating func dropStaleExpiryEntry(_ key: [UInt8], expiresAt: Int64) {
        openBatch.mutations.append(.delete(key: StorageLayout.expiryKey(key, expiresAt: expiresAt)))
    }

    /// Closes the open batch and returns it, or nil when the turn wrote nothing.
    public mutating func closeBatch() -> StorageBatch? {
        if countsChanged {
            var counts: [UInt8] = []
            counts.appendBigEndian(UInt64(bitPattern: keyCount))
            counts.appendBigEndian(UInt64(bitPattern: expiringKeyCount))
            openBatch.mutations.append(.put(key: Self.countsMetaKey, value: counts))
            countsChanged = false
        }
        guard !openBatch.mutations.isEmpty else { return nil }
        let closed = openBatch
        openBatch = StorageBatch(sequence: closed.sequence.next, needsSync: false)
        return closed
    }

    /// The shell made every batch through `sequence` durable: retire their pending writes into the cache.
    public mutating func persisted(through sequence: BatchSequence) {
        precondition(sequence < openBatch.sequence, "persisted \(sequence) but the open batch is \(openBatch.sequence)")
        guard sequence > durableThrough else { return }
        for (_, keys) in keysByBatch.removeThrough(sequence) {
            for key in keys {
                guard let position = pending.index(forKey: key), pending.values[position].sequence <= sequence else {
                    continue
                }
                let write = pending.remove(at: position).value
                if let record = write.record { cache.put(key, record) } else { cache.remove(key.bytes) }
            }
        }
        if !auxPending.isEmpty { auxPending = auxPending.filter { $0.value.sequence > sequence } }
        if !removedRanges.isEmpty { removedRanges.removeAll { $0.sequence.map { $0 <= sequence } ?? false } }
        durableThrough = sequence
    }

    // MARK: Scanning

    /// Live keys in storage order (hash slot, then key) from the position `start` (a storage key;
    /// empty means the beginning), examining at most `limit` keys of the merged view (durable and
    /// pending). Returns the keys with their records and the position to continue from (nil when the
    /// keyspace is exhausted).
    public mutating func scan(from start: [UInt8], limit: Int, now: Int64) throws(CommandError) -> (
        entries: [(key: [UInt8], record: ValueRecord)], next: [UInt8]?
    ) {
        precondition(limit > 0, "scan limit must be positive, got \(limit)")
        let range = StorageLayout.keyspaceDataRange
        let from = start.lexicographicallyPrecedes(range.start) ? range.start : start
        var candidates: [[UInt8]: ValueRecord?] = [:]
        do {
            for (dataKey, value) in try store.scan(from: from, to: range.end, limit: limit) {
                let key = StorageLayout.userKey(fromDataKey: dataKey)
                let record = removedRanges.isEmpty || !isRemoved(key) ? try ValueRecord.decode(value, key: key) : nil
                candidates[dataKey] = .some(record)  // A removed key still takes its place in the window.
            }
        } catch {
            throw .storage(error)
        }
        // The first `limit` pending keys at or after `start` can change what the window holds.
        let pendingKeys = pending.map {
            (Self.dataKey($0.key.bytes), removedRanges.isEmpty || !isRemoved($0.key.bytes) ? $0.value.record : nil)
        }
        .filter { !$0.0.lexicographicallyPrecedes(from) }
        .sorted { $0.0.lexicographicallyPrecedes($1.0) }.prefix(limit)
        for (dataKey, record) in pendingKeys { candidates[dataKey] = record }
        // The window is the first `limit` keys of the merged, sorted view.
        let window = candidates.keys.sorted { $0.lexicographicallyPrecedes($1) }.prefix(limit)
        var entries: [(key: [UInt8], record: ValueRecord)] = []
        for dataKey in window {
            guard let record = candidates[dataKey] ?? nil, !record.isExpired(at: now) else { continue }
            entries.append((StorageLayout.userKey(fromDataKey: dataKey), record))
        }
        // Fewer candidates than the limit means both the store and the pending writes ran out.
        let next: [UInt8]? = candidates.count < limit ? nil : window.last.map { $0 + [0] }
        return (entries, next)
    }

    // MARK: Expiry

    /// Index entries of keys whose expiry time is before `now`, oldest first, at most `limit`.
    func expiredIndexEntries(now: Int64, limit: Int) throws(CommandError) -> [(expiresAt: Int64, key: [UInt8])] {
        let range = StorageLayout.expiryRange(until: now + 1)
        do {
            return try store.scan(from: range.start, to: range.end, limit: limit).compactMap {
                StorageLayout.parseExpiryKey($0.key)
            }
        } catch {
            throw .storage(error)
        }
    }

    /// Removes one expired key found in the expiry index, or drops the index entry if it is stale.
    mutating func expire(_ key: [UInt8], indexedAt expiresAt: Int64, now: Int64) throws(CommandError) {
        let record = try stored(key, now: now)
        if let record, record.expiresAt == expiresAt, record.isExpired(at: now) {
            delete(key, previous: record)
            expiredKeys += 1
        } else if record?.expiresAt != expiresAt, pending[ByteKey(key)] == nil {
            // Stale: the key's expiry changed (or it is gone) and that change is durable already.
            openBatch.mutations.append(.delete(key: StorageLayout.expiryKey(key, expiresAt: expiresAt)))
        }
    }

    func checkInvariants() {
        precondition(
            durableThrough < openBatch.sequence, "durable \(durableThrough) not below open \(openBatch.sequence)")
        precondition(keyCount >= 0, "key count went negative: \(keyCount)")
        precondition(expiringKeyCount >= 0, "expiring key count went negative: \(expiringKeyCount)")
        precondition(expiringKeyCount <= keyCount, "more expiring keys (\(expiringKeyCount)) than keys (\(keyCount))")
    }
}
