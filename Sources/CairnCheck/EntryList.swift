/// The history of one key as a doubly linked list of call and return entries in time order, from
/// which operations are lifted as the search places them (Porcupine's representation, after Lowe).
///
/// Each operation has a call entry at its invocation; a completed operation also has a return entry
/// at its response. Operations with unknown outcome have none: their response is at +infinity, so
/// they never force anything to happen before them. At equal times calls come before returns, so
/// equal timestamps read as concurrent; among equals, the operation earlier in the history comes first.
///
/// The operations that may be placed next are exactly the call entries before the first return
/// entry still in the list. `lift` unlinks an operation's entries in O(1) and `unlift` relinks them,
/// which restores the list exactly when done in reverse order of lifting (Knuth's dancing links).
///
/// A class, not a struct: the search calls it several times per step, and in debug builds each call
/// on a struct property copied and released all six arrays, which was most of the checker's time.
/// One `KeySearch` owns each list and never shares it.
final class EntryList {
    /// Sentinels: the list runs head, entries in time order, tail.
    let head: Int
    let tail: Int
    private var next: [Int]
    private var previous: [Int]
    private let entryOperation: [Int]
    private let entryIsCall: [Bool]
    private let callEntry: [Int]
    private let returnEntry: [Int?]

    init(operations: [SearchOperation]) {
        var entries: [(time: Timestamp, isReturn: Int, operation: Int)] = []
        entries.reserveCapacity(operations.count * 2)
        for (index, operation) in operations.enumerated() {
            entries.append((operation.invocation, 0, index))
            if let response = operation.response {
                precondition(response >= operation.invocation, "operation \(index) responds before it is invoked")
                entries.append((response, 1, index))
            }
        }
        entries.sort { ($0.time, $0.isReturn, $0.operation) < ($1.time, $1.isReturn, $1.operation) }

        var callEntry = Array(repeating: -1, count: operations.count)
        var returnEntry: [Int?] = Array(repeating: nil, count: operations.count)
        for (position, entry) in entries.enumerated() {
            if entry.isReturn == 0 {
                callEntry[entry.operation] = position
            } else {
                returnEntry[entry.operation] = position
            }
        }
        let head = entries.count
        let tail = entries.count + 1
        var next = Array(repeating: tail, count: entries.count + 2)
        var previous = Array(repeating: head, count: entries.count + 2)
        var last = head
        for entry in 0..<entries.count {
            next[last] = entry
            previous[entry] = last
            last = entry
        }
        next[last] = tail
        previous[tail] = last

        self.head = head
        self.tail = tail
        self.next = next
        self.previous = previous
        self.entryOperation = entries.map(\.operation)
        self.entryIsCall = entries.map { $0.isReturn == 0 }
        self.callEntry = callEntry
        self.returnEntry = returnEntry
    }

    /// The first entry still in the list, or `tail`.
    var first: Int { next[head] }

    func after(_ entry: Int) -> Int { next[entry] }

    func isCall(_ entry: Int) -> Bool { entryIsCall[entry] }

    func operation(at entry: Int) -> Int { entryOperation[entry] }

    func callEntry(of operation: Int) -> Int { callEntry[operation] }

    /// Removes the operation's entries: it has been placed.
    func lift(_ operation: Int) {
        unlink(callEntry[operation])
        if let returned = returnEntry[operation] { unlink(returned) }
    }

    /// Puts back the entries `lift` removed. Valid only for the most recently lifted operation.
    func unlift(_ operation: Int) {
        if let returned = returnEntry[operation] { relink(returned) }
        relink(callEntry[operation])
    }

    private func unlink(_ entry: Int) {
        next[previous[entry]] = next[entry]
        previous[next[entry]] = previous[entry]
    }

    private func relink(_ entry: Int) {
        precondition(next[previous[entry]] == next[entry], "entry \(entry) is relinked out of order")
        next[previous[entry]] = entry
        previous[next[entry]] = entry
    }
}
