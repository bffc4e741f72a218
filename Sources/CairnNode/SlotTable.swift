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
struct SlotTable<Key: Hashable & Sendable, Value: Sendable>: Sendable {
    private var slotOfKey: [Key: Int] = [:]
    private var keysBySlot: [Key?] = []
    private var storage = SlotStorage<Value>(capacity: 4)
    private var freeSlots: [Int] = []

    init() {}

    var count: Int { slotOfKey.count }
    var isEmpty: Bool { slotOfKey.isEmpty }

    /// The value of `key`, or nil. Reading copies the value (fine off the hot paths); writing changes
    /// it in place, and assigning nil removes it.
    subscript(key: Key) -> Value? {
        get { slotOfKey[key].map { storage.base[$0] } }
        _modify {
            if let slot = slotOfKey[key] {
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
    /// check `contains` and use this.
    subscript(existing key: Key) -> Value {
        _read {
            guard let slot = slotOfKey[key] else { preconditionFailure("no value for \(key) in the table") }
            yield storage.base[slot]
        }
        _modify {
            guard let slot = slotOfKey[key] else { preconditionFailure("no value for \(key) in the table") }
            makeUnique()
            yield &storage.base[slot]
        }
    }

    func contains(_ key: Key) -> Bool { slotOfKey[key] != nil }

    @discardableResult
    mutating func removeValue(forKey key: Key) -> Value? {
        guard let slot = slotOfKey[key] else { return nil }
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
        if let slot = freeSlots.popLast() {
            storage.occupy(slot, with: value)
            keysBySlot[slot] = key
            slotOfKey[key] = slot
        } else {
            if storage.slotCount == storage.capacity { storage = storage.copy(capacity: storage.capacity * 2) }
            slotOfKey[key] = storage.slotCount
            storage.append(value)
            keysBySlot.append(key)
        }
    }

    /// Forgets `key` and frees its slot (already vacated in the storage).
    private mutating func release(_ slot: Int, key: Key) {
        slotOfKey[key] = nil
        keysBySlot[slot] = nil
        freeSlots.append(slot)
    }
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
