import CairnCore
import CairnPlacement
import CairnStorage

/// A bounded least-recently-used cache of key records, in front of the store.
///
/// Write-through: the node puts a record here when its write is durable, and removes it when the key
/// is deleted or expires, so a hit is always the durable state. TTL-aware: a hit on an expired record
/// counts as a miss (and the node then expires the key). Bounded by bytes: each entry costs its key,
/// its value and a fixed overhead; the least recently used entries go first.
///
/// The list is intrusive over arrays (indices, not references), so the cache is a value type with no
/// per-entry allocation beyond the key and value themselves.
public struct ReadCache: Sendable {
    struct Entry: Sendable {
        var key: [UInt8]
        var record: ValueRecord
        var previous: Int
        var next: Int
        /// The key's hash slot, so a partition's entries are found without hashing every key again;
        /// `ReadCache.unused` for an array slot on the free list.
        var hashSlot: UInt16
    }

    /// Bytes charged per entry on top of key and value: the dictionary slot, the array slot, headers.
    public static let entryOverheadBytes = 96
    static let none = -1
    static let unused = UInt16.max

    public let capacityBytes: Int
    public private(set) var usedBytes = 0
    public private(set) var hits: UInt64 = 0
    public private(set) var misses: UInt64 = 0
    public private(set) var evictions: UInt64 = 0

    private var index: [ByteKey: Int] = [:]
    private var entries: [Entry] = []
    private var freeSlots: [Int] = []
    private var head = ReadCache.none  // Most recently used.
    private var tail = ReadCache.none  // Least recently used.

    public init(capacityBytes: Int) {
        precondition(capacityBytes >= 0, "cache capacity \(capacityBytes) must not be negative")
        self.capacityBytes = capacityBytes
    }

    public var count: Int { index.count }

    static func cost(_ key: [UInt8], _ record: ValueRecord) -> Int {
        key.count + record.value.count + entryOverheadBytes
    }

    /// Looks up `key`, counting a hit or a miss. An expired record is a miss and is dropped.
    public mutating func get(_ key: [UInt8], now unixMilliseconds: Int64) -> ValueRecord? {
        get(ByteKey(key), now: unixMilliseconds)
    }

    /// `get` for a key already hashed.
    public mutating func get(_ key: ByteKey, now unixMilliseconds: Int64) -> ValueRecord? {
        guard let slot = index[key] else {
            misses += 1
            return nil
        }
        if entries[slot].record.isExpired(at: unixMilliseconds) {
            remove(key.bytes)
            misses += 1
            return nil
        }
        hits += 1
        moveToFront(slot)
        return entries[slot].record
    }

    /// Whether `key` is cached, without counting or reordering (for tests and invariants).
    public func contains(_ key: [UInt8]) -> Bool { index[ByteKey(key)] != nil }

    /// Stores `record` for `key`, evicting least recently used entries to stay within capacity. A record
    /// larger than the whole cache is not stored (and any older record for the key is dropped).
    public mutating func put(_ key: [UInt8], _ record: ValueRecord) {
        put(ByteKey(key), record)
    }

    /// `put` for a key already hashed.
    public mutating func put(_ hashed: ByteKey, _ record: ValueRecord) {
        let key = hashed.bytes
        let cost = Self.cost(key, record)
        if let slot = index[hashed] {
            // Update in place when the new record still fits: the common case of overwriting a hot key.
            let oldCost = Self.cost(key, entries[slot].record)
            if usedBytes - oldCost + cost <= capacityBytes {
                entries[slot].record = record
                usedBytes += cost - oldCost
                moveToFront(slot)
                return
            }
            remove(key)
        }
        guard cost <= capacityBytes else { return }
        while usedBytes + cost > capacityBytes, tail != Self.none {
            let victim = entries[tail].key
            remove(victim)
            evictions += 1
        }
        let entry = Entry(key: key, record: record, previous: Self.none, next: head, hashSlot: HashSlot.of(key))
        let slot: Int
        if let free = freeSlots.popLast() {
            entries[free] = entry
            slot = free
        } else {
            entries.append(entry)
            slot = entries.count - 1
        }
        if head != Self.none { entries[head].previous = slot }
        head = slot
        if tail == Self.none { tail = slot }
        index[hashed] = slot
        usedBytes += cost
        precondition(usedBytes <= capacityBytes, "cache holds \(usedBytes) bytes over capacity \(capacityBytes)")
    }

    /// Drops `key` if cached.
    public mutating func remove(_ key: [UInt8]) {
        guard let slot = index.removeValue(forKey: ByteKey(key)) else { return }
        unlink(slot)
        usedBytes -= Self.cost(entries[slot].key, entries[slot].record)
        entries[slot].key = []
        entries[slot].record = ValueRecord(value: [])
        entries[slot].hashSlot = Self.unused
        freeSlots.append(slot)
        precondition(usedBytes >= 0, "cache byte count went negative removing a key")
    }

    /// Drops every cached key in the hash slots `slots` (a partition's keys, when its copy is removed):
    /// one pass over the entries, no key hashed (a full cache holds hundreds of thousands).
    public mutating func removeAll(inSlots slots: ClosedRange<Int>) {
        for position in entries.indices
        where entries[position].hashSlot != Self.unused && slots.contains(Int(entries[position].hashSlot)) {
            remove(entries[position].key)
        }
    }

    private mutating func unlink(_ slot: Int) {
        let previous = entries[slot].previous
        let next = entries[slot].next
        if previous != Self.none { entries[previous].next = next } else { head = next }
        if next != Self.none { entries[next].previous = previous } else { tail = previous }
        entries[slot].previous = Self.none
        entries[slot].next = Self.none
    }

    private mutating func moveToFront(_ slot: Int) {
        guard head != slot else { return }
        unlink(slot)
        entries[slot].next = head
        if head != Self.none { entries[head].previous = slot }
        head = slot
        if tail == Self.none { tail = slot }
    }
}
