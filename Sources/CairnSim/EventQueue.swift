/// The simulator's agenda: events ordered by (time, sequence number), a binary min-heap.
///
/// Why a sequence number: events due at the same millisecond run in the order they were scheduled,
/// so a run never depends on the heap's internal order (or on any hashed collection's order), and the
/// same seed replays exactly (STYLE.md §2.7).
struct EventQueue<Payload> {
    private struct Item {
        var time: UInt64
        var sequence: UInt64
        var payload: Payload

        func precedes(_ other: Item) -> Bool {
            time < other.time || (time == other.time && sequence < other.sequence)
        }
    }

    /// More events than this pending at once means something schedules without bound: a bug. (The
    /// simulator stops a run long before, at `Simulation.pendingEventsMax`.)
    static var countMax: Int { 10_000_000 }

    private var heap: [Item] = []
    private var nextSequence: UInt64 = 0

    var count: Int { heap.count }
    var isEmpty: Bool { heap.isEmpty }

    /// Schedules `payload` at `time`, after everything already scheduled for that time.
    mutating func push(_ payload: Payload, at time: UInt64) {
        precondition(heap.count < Self.countMax, "event queue holds \(heap.count) events: unbounded scheduling")
        heap.append(Item(time: time, sequence: nextSequence, payload: payload))
        nextSequence += 1
        var child = heap.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard heap[child].precedes(heap[parent]) else { break }
            heap.swapAt(child, parent)
            child = parent
        }
    }

    /// Removes and returns the earliest event, or nil if there is none.
    mutating func pop() -> (time: UInt64, payload: Payload)? {
        guard !heap.isEmpty else { return nil }
        heap.swapAt(0, heap.count - 1)
        let first = heap.removeLast()
        var parent = 0
        while true {
            let left = 2 * parent + 1
            let right = left + 1
            var smallest = parent
            if left < heap.count && heap[left].precedes(heap[smallest]) { smallest = left }
            if right < heap.count && heap[right].precedes(heap[smallest]) { smallest = right }
            guard smallest != parent else { break }
            heap.swapAt(parent, smallest)
            parent = smallest
        }
        return (first.time, first.payload)
    }

    /// The time of the earliest event, if any.
    var nextTime: UInt64? { heap.first?.time }
}
