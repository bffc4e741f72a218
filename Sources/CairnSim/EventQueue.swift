/// The simulator's agenda: events ordered by (time, sequence number), a binary min-heap.
///
/// Why a sequence number: events due at the same millisecond run in the order they were scheduled,
/// so a run never depends on the heap's internal order (or on any hashed collection's order), and the
/// same seed replays exactly (STYLE.md §2.7).
///
/// The heap holds small plain items (time, sequence, slot); payloads wait in a slab of slots reused
/// through a free list, so sifting never copies or retains a payload.
struct EventQueue<Payload> {
    private struct Item {
        var time: UInt64
        var sequence: UInt64
        var slot: Int

        func precedes(_ other: Item) -> Bool {
            time < other.time || (time == other.time && sequence < other.sequence)
        }
    }

    /// More events than this pending at once means something schedules without bound: a bug. (The
    /// simulator stops a run long before, at `Simulation.pendingEventsMax`.)
    static var countMax: Int { 10_000_000 }

    private var heap: [Item] = []
    private var payloads: [Payload?] = []
    private var freeSlots: [Int] = []
    private var nextSequence: UInt64 = 0

    var count: Int { heap.count }
    var isEmpty: Bool { heap.isEmpty }

    /// Schedules `payload` at `time`, after everything already scheduled for that time.
    mutating func push(_ payload: Payload, at time: UInt64) {
        precondition(heap.count < Self.countMax, "event queue holds \(heap.count) events: unbounded scheduling")
        let slot: Int
        if let free = freeSlots.popLast() {
            slot = free
            payloads[slot] = payload
        } else {
            slot = payloads.count
            payloads.append(payload)
        }
        heap.append(Item(time: time, sequence: nextSequence, slot: slot))
        nextSequence += 1
        var child = heap.count - 1
        let item = heap[child]
        while child > 0 {
            let parent = (child - 1) / 2
            guard item.precedes(heap[parent]) else { break }
            heap[child] = heap[parent]
            child = parent
        }
        heap[child] = item
    }

    /// Removes and returns the earliest event, or nil if there is none.
    mutating func pop() -> (time: UInt64, payload: Payload)? {
        guard let first = heap.first else { return nil }
        let last = heap.removeLast()
        if !heap.isEmpty {
            var parent = 0
            while true {
                let left = 2 * parent + 1
                guard left < heap.count else { break }
                let right = left + 1
                let child = right < heap.count && heap[right].precedes(heap[left]) ? right : left
                guard heap[child].precedes(last) else { break }
                heap[parent] = heap[child]
                parent = child
            }
            heap[parent] = last
        }
        guard let payload = payloads[first.slot] else {
            preconditionFailure("event queue slot \(first.slot) is empty")
        }
        payloads[first.slot] = nil
        freeSlots.append(first.slot)
        return (first.time, payload)
    }

    /// The time of the earliest event, if any.
    var nextTime: UInt64? { heap.first?.time }
}
