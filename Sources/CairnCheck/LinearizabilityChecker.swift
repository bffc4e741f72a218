import CairnCore

/// Decides whether a history of register operations (read, write, compare-and-set, delete on
/// keys) is linearizable, and if not, explains where it breaks.
///
/// ## What it checks
///
/// A history is *linearizable* (Herlihy & Wing 1990) if each operation can be given a single
/// instant, between its invocation and its response, at which it takes effect, such that the
/// replies match a single register applied in that order. Cairn promises this for every key.
///
/// ## Algorithm
///
/// 1. **Partition by key.** Linearizability is *local* (Herlihy & Wing 1990, Theorem 1): a history is
///    linearizable if and only if each key's sub-history is. Keys are independent registers, so
///    each is checked alone, in key order; this turns one huge search into many small ones.
/// 2. **Depth-first search per key** (Wing & Gong 1993, "Testing and verifying concurrent objects").
///    Build a linearization one operation at a time. The candidates for "next" are the operations
///    not yet placed that were invoked no later than the earliest response among the operations
///    not yet placed (the *minimal* operations): anything invoked later must follow that response.
///    A candidate is placed if the register model accepts its reply from the current value;
///    when no candidate fits, the search undoes the last placement and tries the next candidate.
///    It is a loop over an explicit stack, not recursion, so a long history cannot overflow the
///    thread's stack.
/// 3. **Memoization** (Lowe 2017, "Testing for linearizability", Concurrency and Computation:
///    Practice and Experience 29(4)). Two partial linearizations that placed the same *set* of
///    operations and left the register with the same value have the same futures. The search
///    remembers every (placed set as a bitset, value) it backed out of, and never enters one again.
/// 4. **Entry list** (Porcupine, github.com/anishathalye/porcupine). Calls and returns live in one
///    doubly linked list in time order; the candidates are the calls before the first return, and
///    placing an operation unlinks its entries in O(1) (undone in reverse, as in dancing links).
/// 5. **Pruning that loses nothing**, each argued in `KeySearch` and checked against a brute-force
///    search in the tests: a read that fits is placed at once, without trying other orders; values
///    that no operation reads or compares against are one value to the search (`ValueTable`); and
///    operations with unknown outcome are placed only where the next operation needs them, and
///    identical ones in order of invocation. These turn the 2^k blow-ups that k concurrent reads, k
///    unread writes or k timed-out requests would otherwise cause into near-linear work.
///
/// ## Operations with unknown outcome
///
/// An operation that got no reply may have taken effect at any instant after its invocation, or
/// never. It is given a response time of +infinity, so it never forces another operation to wait
/// for it, and the search succeeds as soon as every *completed* operation is placed: an unknown
/// operation left unplaced is one that never happened (or happened after everything else, which is
/// the same for a register). A read with unknown outcome carries no information and is dropped; an
/// unknown compare-and-set is modelled as one that swapped, since one that did not swap changed
/// nothing and equals leaving it out. Operations whose outcome is `failed` did not take effect and
/// are dropped.
///
/// ## Cost
///
/// Checking linearizability is NP-complete in general (Gibbons & Korach 1997, "Testing shared
/// memories"): the states for a key with n operations can number 2^n × (distinct values + 2). What
/// matters in practice is how many operations on one key are in flight at once. With up to about
/// ten clients per key, a linearizable history takes one to three states per operation, and a
/// violation a few states to a few hundred per operation (the search must rule out every order
/// before the bad point). Each state costs O(n / 64) words to store, plus a scan of the
/// candidates. The work per key is bounded by `statesPerKeyMax`; a key that reaches it is reported
/// as inconclusive instead of running forever, and so is a key with more than
/// `operationsPerKeyMax` operations, which bounds the memory each state takes. Spreading a
/// workload over more keys, or fewer clients per key, keeps the search small.
///
/// ## Determinism
///
/// Keys are checked in byte order and operations are ordered by time, then by position in the
/// history, so the same history always gives the same report. The memo is a hashed table, but it
/// is only asked "seen this before?", never iterated.
///
/// ```swift
/// let history = [
///     RegisterOperation(client: 1, key: "x", kind: .write("a"), invocation: 0, outcome: .ok(at: 2)),
///     RegisterOperation(client: 2, key: "x", kind: .read(observed: nil), invocation: 3, outcome: .ok(at: 4)),
/// ]
/// let report = try LinearizabilityChecker().check(history)
/// if case .notLinearizable(let violation) = report.verdict { print(violation) }  // a stale read
/// ```
public struct LinearizabilityChecker: Sendable {
    /// Search states one key may use before the checker calls that key inconclusive.
    public var statesPerKeyMax: Int
    /// Operations one key may have before the checker calls that key inconclusive without searching.
    public var operationsPerKeyMax: Int
    /// Values keys hold before the history starts; a key not listed starts absent.
    public var initialValues: [RegisterKey: RegisterValue]

    /// - Precondition: both limits are positive.
    public init(
        statesPerKeyMax: Int = Limits.linearizabilityStatesPerKeyMax,
        operationsPerKeyMax: Int = Limits.linearizabilityOperationsPerKeyMax,
        initialValues: [RegisterKey: RegisterValue] = [:]
    ) {
        precondition(statesPerKeyMax > 0, "statesPerKeyMax must be positive, got \(statesPerKeyMax)")
        precondition(operationsPerKeyMax > 0, "operationsPerKeyMax must be positive, got \(operationsPerKeyMax)")
        self.statesPerKeyMax = statesPerKeyMax
        self.operationsPerKeyMax = operationsPerKeyMax
        self.initialValues = initialValues
    }

    /// Checks `history` key by key and stops at the first key (in key order) that is not linearizable.
    ///
    /// - Parameter history: operations in any order; `IndexedOperation.index` in the report refers to
    ///   positions in this array.
    /// - Returns: the verdict with counts of the work done.
    /// - Throws: `HistoryError` if an operation responded before it was invoked.
    public func check(_ history: [RegisterOperation]) throws(HistoryError) -> LinearizabilityReport {
        var positionsByKey: [RegisterKey: [Int]] = [:]
        for (index, operation) in history.enumerated() {
            if let response = operation.response, response < operation.invocation {
                throw .responseBeforeInvocation(index: index, invocation: operation.invocation, response: response)
            }
            positionsByKey[operation.key, default: []].append(index)
        }

        var operationsChecked = 0
        var statesExplored = 0
        var firstInconclusive: Inconclusive?
        for key in positionsByKey.keys.sorted() {
            let relevant = (positionsByKey[key] ?? []).filter { Self.isRelevant(history[$0]) }
            let operations = relevant.map { IndexedOperation(index: $0, operation: history[$0]) }
            operationsChecked += operations.count
            guard operations.count <= operationsPerKeyMax else {
                let reason = Inconclusive.Reason.operationsLimit(
                    operations: operations.count, limit: operationsPerKeyMax)
                firstInconclusive = firstInconclusive ?? Inconclusive(key: key, reason: reason)
                continue
            }
            let keyCheck = KeyCheck(key: key, operations: operations, initialValue: initialValues[key])
            switch keyCheck.run(statesMax: statesPerKeyMax) {
            case .linearizable(let states):
                statesExplored += states
            case .notLinearizable(let prefix, let states):
                statesExplored += states
                let violation = keyCheck.violation(prefix: prefix, statesExplored: states)
                return LinearizabilityReport(
                    verdict: .notLinearizable(violation), keysChecked: positionsByKey.count,
                    operationsChecked: operationsChecked, statesExplored: statesExplored)
            case .inconclusive(let states):
                statesExplored += states
                let reason = Inconclusive.Reason.statesLimit(limit: statesPerKeyMax)
                firstInconclusive = firstInconclusive ?? Inconclusive(key: key, reason: reason)
            }
        }
        let verdict: LinearizabilityReport.Verdict = firstInconclusive.map { .inconclusive($0) } ?? .linearizable
        return LinearizabilityReport(
            verdict: verdict, keysChecked: positionsByKey.count, operationsChecked: operationsChecked,
            statesExplored: statesExplored)
    }

    /// Whether an operation constrains the search: failed operations did not happen, and a read
    /// without a reply saw nothing.
    static func isRelevant(_ operation: RegisterOperation) -> Bool {
        switch (operation.outcome, operation.kind) {
        case (.failed, _): false
        case (.unknown, .read): false
        case (.ok, _), (.unknown, _): true
        }
    }
}
