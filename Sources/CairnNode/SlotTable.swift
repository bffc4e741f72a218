import CairnCore

/// A dictionary for large values that are read and changed in place.
///
/// `Dictionary`'s and `Array`'s subscripts return a copy of the value when read (only writes go
/// through a `_modify` accessor), and copying a large struct retains every array, dictionary and set
/// inside it: for a node's Raft groups that copy cost more than the rest of a GET (measured with
/// perf). Here values live in slots of one buffer and a dictionary maps each key to its slot; the
/// `existing:` subscript borrows the slot through a pointer, so `table[existing: key].field` reads one
/// field and copies nothing else, and `table[existing: key].field = x` changes the value in place.
///
/// A value type: the buffer is shared between copies of a table and copied before the first change
/// to a shared one (copy on write), as the standard collections do.
///
/// Iteration order is slot order: insertion order, except that a removed key's slot is reused by
/// the next insertion. Callers that need a stable order sort the keys.
///
/// Keys are found through an open-addressing index on `SlotKey.slotHash` (multiplicative hashing,
/// linear probing) rather than a `Dictionary`: the keys are identifiers the node assigns itself
/// (groups, clients), so they need no protection from chosen collisions, and the standard library's
/// seeded hash of each lookup was a fifth of the loop thread's instructions under SET load (callgrind:
/// over a hundred group and client lookups per command).
struct SlotTable<Key: SlotKey, Value: Sendable>: Sendable {
    /// Per bucket, the slot of the key that probed to it, or -1; at most half are taken.
    private var buckets = [Int32](repeating: -1, count: 8)
    /// 64 minus log2 of the bucket count: the hash's top bits pick a bucket.
    private var bucketShift = 61
    private(set) var count = 0
    private var keysBySlot: [Key?] = []
    private var storage = SlotStorage<Value>(capacity: 4)
    private var freeSlots: [Int] = []

    init() {}

    var isEmpty: Bool { count == 0 }

    /// The value of `key`, or nil. Reading copies the value (fine off the hot paths); writing changes
    /// it in place, and assigning nil removes it.
    subscript(key: Key) -> Value? {
        get { slot(of: key).map { storage.base[$0] } }
        _modify {
            if let slot = slot(of: key) {
                makeUnique()
                // Moved out and back (no retains), so the caller may also remove it by assigning nil.
                var value: Value? = (storage.base + slot).move()
                defer {
                    if let value {
                        (storage.base + slot).initialize(to: value)
                    } else {
                        storage.vacate(slot)
                        release(slot, key: key)
                    }
                }
                yield &value
            } else {
                var fresh: Value? = nil
                defer { if let fresh { insert(fresh, forKey: key) } }
                yield &fresh
            }
        }
    }

    /// The value of `key`, which must be present: borrowed for reads, changed in place by writes.
    /// `table[existing: key].field` never copies the value (`table[key]?.field` does), so hot paths
    /// check `contains` and use this. A computed property or non-mutating method called through it
    /// (`table[existing: key].isLeader`) may still get a copy of the whole value in the release build
    /// (seen with perf annotate, with this accessor and with addressors alike): hot paths read stored
    /// fields, or call `mutating` methods, which need no copy.
    subscript(existing key: Key) -> Value {
        _read {
            guard let slot = slot(of: key) else { preconditionFailure("no value for \(key) in the table") }
            yield storage.base[slot]
        }
        _modify {
            guard let slot = slot(of: key) else { preconditionFailure("no value for \(key) in the table") }
            makeUnique()
            yield &storage.base[slot]
        }
    }

    func contains(_ key: Key) -> Bool { slot(of: key) != nil }

    @discardableResult
    mutating func removeValue(forKey key: Key) -> Value? {
        guard let slot = slot(of: key) else { return nil }
        makeUnique()
        let value = (storage.base + slot).move()
        storage.vacate(slot)
        release(slot, key: key)
        return value
    }

    /// The keys, in slot order.
    var keys: [Key] { keysBySlot.compactMap { $0 } }

    /// The values, in slot order (copies: for the rare walks over every value).
    var allValues: [Value] { entries.map(\.value) }

    /// Every key with its value (copies, as `allValues`).
    var entries: [(key: Key, value: Value)] {
        var result: [(key: Key, value: Value)] = []
        result.reserveCapacity(count)
        for (slot, key) in keysBySlot.enumerated() {
            if let key { result.append((key, storage.base[slot])) }
        }
        return result
    }

    private mutating func makeUnique() {
        if !isKnownUniquelyReferenced(&storage) { storage = storage.copy(capacity: storage.capacity) }
    }

    private mutating func insert(_ value: Value, forKey key: Key) {
        makeUnique()
        let slot: Int
        if let free = freeSlots.popLast() {
            slot = free
            storage.occupy(slot, with: value)
            keysBySlot[slot] = key
        } else {
            if storage.slotCount == storage.capacity { storage = storage.copy(capacity: storage.capacity * 2) }
            slot = storage.slotCount
            storage.append(value)
            keysBySlot.append(key)
        }
        count += 1
        if count * 2 > buckets.count {
            rebuildIndex(bucketCount: buckets.count * 2)
        } else {
            var bucket = home(of: key)
            while buckets[bucket] >= 0 { bucket = (bucket + 1) & (buckets.count - 1) }
            buckets[bucket] = Int32(slot)
        }
    }

    /// Forgets `key` and frees its slot (already vacated in the storage).
    private mutating func release(_ slot: Int, key: Key) {
        removeFromIndex(key)
        keysBySlot[slot] = nil
        freeSlots.append(slot)
        count -= 1
    }

    // MARK: The index

    /// The bucket where probing for `key` starts.
    private func home(of key: Key) -> Int {
        Int(truncatingIfNeeded: (key.slotHash &* 0x9E37_79B9_7F4A_7C15) >> UInt64(bucketShift))
    }

    private func slot(of key: Key) -> Int? {
        bucket(of: key).map { Int(buckets[$0]) }
    }

    /// The bucket holding `key`'s slot, or nil.
    private func bucket(of key: Key) -> Int? {
        var bucket = home(of: key)
        while true {
            let slot = buckets[bucket]
            if slot < 0 { return nil }
            if keysBySlot[Int(slot)] == key { return bucket }
            bucket = (bucket + 1) & (buckets.count - 1)
        }
    }

    /// Empties `key`'s bucket and moves later keys of its probe run back, so every key stays
    /// reachable from its home bucket without tombstones.
    private mutating func removeFromIndex(_ key: Key) {
        guard var hole = bucket(of: key) else { preconditionFailure("\(key) is not in the index") }
        let mask = buckets.count - 1
        var next = (hole + 1) & mask
        while buckets[next] >= 0 {
            let home = home(of: keysBySlot[Int(buckets[next])]!)
            // The key at `next` may fill the hole unless its home lies cyclically in (hole, next].
            let homeAfterHole = (home - hole - 1) & mask
            let nextAfterHole = (next - hole - 1) & mask
            if homeAfterHole > nextAfterHole {
                buckets[hole] = buckets[next]
                hole = next
            }
            next = (next + 1) & mask
        }
        buckets[hole] = -1
    }

    private mutating func rebuildIndex(bucketCount: Int) {
        buckets = [Int32](repeating: -1, count: bucketCount)
        bucketShift = 64 - bucketCount.trailingZeroBitCount
        for (slot, key) in keysBySlot.enumerated() {
            guard let key else { continue }
            var bucket = home(of: key)
            while buckets[bucket] >= 0 { bucket = (bucket + 1) & (bucketCount - 1) }
            buckets[bucket] = Int32(slot)
        }
    }
}

/// A key of a `SlotTable`: an identifier with a cheap hash. Not for keys a client chooses (their
/// collisions could be made to degrade every lookup).
protocol SlotKey: Hashable, Sendable {
    /// Distinct keys should give distinct values; the table mixes the bits itself.
    var slotHash: UInt64 { get }
}

extension GroupID: SlotKey {
    var slotHash: UInt64 { rawValue }
}

extension ClientID: SlotKey {
    var slotHash: UInt64 { rawValue }
}

/// The slots of a `SlotTable`: `slotCount` slots at `base`, room for `capacity`; slot `i` holds an
/// initialized value exactly when `isOccupied[i]`.
/// Unchecked `Sendable`: a table changes its storage only when it holds the only reference
/// (`SlotTable.makeUnique`), so a buffer reachable from two threads is never written.
final class SlotStorage<Value>: @unchecked Sendable {
    let base: UnsafeMutablePointer<Value>
    let capacity: Int
    private(set) var isOccupied: [Bool] = []
    var slotCount: Int { isOccupied.count }

    init(capacity: Int) {
        precondition(capacity > 0, "slot storage needs room for at least one slot")
        self.capacity = capacity
        base = .allocate(capacity: capacity)
    }

    deinit {
        for (slot, occupied) in isOccupied.enumerated() where occupied { (base + slot).deinitialize(count: 1) }
        base.deallocate()
    }

    func append(_ value: Value) {
        precondition(slotCount < capacity, "slot storage full: \(slotCount) of \(capacity)")
        (base + slotCount).initialize(to: value)
        isOccupied.append(true)
    }

    /// Puts `value` into a free slot.
    func occupy(_ slot: Int, with value: Value) {
        precondition(!isOccupied[slot], "slot \(slot) is taken")
        (base + slot).initialize(to: value)
        isOccupied[slot] = true
    }

    /// Marks a slot free whose value was moved out.
    func vacate(_ slot: Int) {
        precondition(isOccupied[slot], "slot \(slot) is already free")
        isOccupied[slot] = false
    }

    /// A new buffer of `capacity` slots holding copies of these.
    func copy(capacity: Int) -> SlotStorage {
        precondition(capacity >= slotCount, "copying \(slotCount) slots into \(capacity)")
        let copy = SlotStorage(capacity: capacity)
        for (slot, occupied) in isOccupied.enumerated() {
            if occupied { (copy.base + slot).initialize(to: base[slot]) }
        }
        copy.isOccupied = isOccupied
        return copy
    }
}
