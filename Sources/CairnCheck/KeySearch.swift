import CairnCore

/// One operation as the search sees it: its effect on the register and its real-time window.
struct SearchOperation: Sendable, Equatable {
    var step: RegisterStep
    var invocation: Timestamp
    /// `nil` for an operation with unknown outcome: it responds at +infinity and may be left out.
    var response: Timestamp?
}

/// What the search for one key found.
enum SearchResult: Sendable, Equatable {
    case linearizable(statesExplored: Int)
    /// No linearization exists. `prefix` is a linearizable prefix that places as many completed
    /// operations as any the search reached, as indices into the key's operations, in order.
    case notLinearizable(prefix: [Int], statesExplored: Int)
    /// The search reached its states limit before it could decide.
    case inconclusive(statesExplored: Int)
}

/// The depth-first search for a linearization of one key's history. See `LinearizabilityChecker`
/// for the algorithm's story and references.
///
/// A *configuration* is the set of completed operations placed (C), the set of unknown-outcome
/// operations placed (P), and the register's value (v). The search places one candidate at a time
/// (`EntryList` says which operations are candidates), keeps the placements on an explicit stack,
/// and undoes them when it gets stuck. It never recurses, so a long history cannot overflow the
/// thread's stack. Five rules keep it small:
///
/// 1. **Memo with dominance.** Every configuration the search backs out of has no successful
///    continuation, and is remembered. A configuration (C, P', v) is not entered if a remembered
///    failure (C, P, v) has P ⊆ P': unknown-outcome operations are optional, so having placed fewer of
///    them leaves at least as many ways forward. With P = P' this is Lowe's memoization; the subset
///    rule stops k unknown-outcome operations from multiplying the states by up to 2^k.
/// 2. **Reads commit.** If a candidate that changes nothing (a read, or a compare-and-set that reported
///    a mismatch) fits the current value, the search places it and does not try the alternatives: if
///    any linearization continues from here, moving that candidate to its front gives another (it is
///    a candidate, so nothing must precede it, and it leaves the value as it found it). When
///    everything after such a placement fails, the search backs out past it at once. Without this,
///    k concurrent reads of one value multiply the states by up to 2^k.
/// 3. **Completed first.** Completed candidates are tried before unknown-outcome ones, so failures
///    with few unknown-outcome operations placed are remembered first and dominate the rest.
/// 4. **Unknown outcomes only where needed.** An unknown-outcome operation p, taking the value from
///    u to v, is placed only if the next placement needs it: an operation that does not fit u. This
///    loses nothing: in any linearization, if p is followed by an operation that also fits u, then
///    either that operation changes nothing (swap the two; p still fits after it) or it is a write
///    (p is overwritten unseen: drop p; likewise if p left the value as it was), and repeating this
///    ends with every unknown-outcome operation
///    right before one that needs it, or at the end, where it can be dropped. Without this rule, an
///    unknown-outcome write nobody saw could be placed anywhere, doubling the states each time.
///    Configurations entered by such an operation are never remembered as failures (the restriction
///    makes them special), but may be pruned by a remembered failure of the same configuration.
/// 5. **Identical unknown outcomes in order.** Unknown-outcome operations with the same step (two
///    deletes, two writes of untested values) are interchangeable, and one invoked earlier is a
///    candidate whenever a later one is; so the later one is placed only after the earlier one.
///    Without this, every timed-out delete could stand in for every other one.
struct KeySearch {
    /// Where remembered failures are filed: a hash of the placed completed operations, and the value.
    /// Collisions are harmless; each `Failure` holds the exact sets.
    private struct FailureKey: Hashable {
        var completedHash: UInt64
        var state: ValueID
    }

    private struct Failure {
        var completed: Bitset
        var pending: Bitset
    }

    private struct Placed {
        var operation: Int
        var stateBefore: ValueID
        /// Placed by rule 2: backing out of it means backing out of the configuration before it too.
        var isCommitted: Bool
    }

    /// The values at which some candidate that does not fit the current value would fit.
    private struct Enabling {
        var values: Set<ValueID>
        /// A candidate reported a mismatch with the current value, so any other value lets it fit.
        var anyChange: Bool
    }

    private enum Placement {
        case placed
        /// The register model rejects the operation's reply from the current value.
        case impossible
        /// The configuration it leads to is dominated by a remembered failure.
        case knownToFail
        /// Rule 4 or 5 leaves it out here: a linearization that needs it here has an equivalent without.
        case ruledOut
        case limitReached
    }

    private let operations: [SearchOperation]
    private let statesMax: Int
    private let entries: EntryList
    private let isPending: [Bool]
    /// Each operation's position among the completed operations, or among the pending ones.
    private let bitIndex: [Int]
    /// For an unknown-outcome operation, the latest one before it in the entry list with the same step.
    private let earlierTwin: [Int?]
    private let completedTotal: Int
    private let pendingTotal: Int

    private var completed: Bitset
    private var pending: Bitset
    private var state: ValueID
    private var stack: [Placed] = []
    private var completedRemaining: Int
    private var failures: [FailureKey: [Failure]] = [:]
    /// Zobrist hashing: each completed operation has a random 64-bit key, and the hash of a set is the
    /// XOR of its members' keys, updated in O(1) per placement instead of rehashing the whole set.
    private let zobristKeys: [UInt64]
    private var completedHash: UInt64 = 0
    /// What `enablesSomeCandidate` computed for the current configuration; cleared whenever it changes.
    private var enabling: Enabling?
    private var statesExplored = 0
    private var deepest: [Int] = []
    private var deepestCompleted = -1

    /// - Precondition: `statesMax > 0`.
    init(operations: [SearchOperation], initial: ValueID, statesMax: Int) {
        precondition(statesMax > 0, "KeySearch needs a positive states limit, got \(statesMax)")
        self.operations = operations
        self.statesMax = statesMax
        self.entries = EntryList(operations: operations)
        self.isPending = operations.map { $0.response == nil }
        var counts = (completed: 0, pending: 0)
        self.bitIndex = operations.map { operation in
            if operation.response == nil {
                defer { counts.pending += 1 }
                return counts.pending
            }
            defer { counts.completed += 1 }
            return counts.completed
        }
        self.completedTotal = counts.completed
        self.pendingTotal = counts.pending
        self.completed = Bitset(capacity: counts.completed)
        self.pending = Bitset(capacity: counts.pending)
        self.state = initial
        self.completedRemaining = counts.completed
        // A fixed seed: the keys only spread the hash, and the same history must always search alike.
        var prng = SplitMix64(seed: 0x243F_6A88_85A3_08D3)
        self.zobristKeys = (0..<counts.completed).map { _ in prng.next() }
        var latestWithStep: [RegisterStep: Int] = [:]
        var earlierTwin: [Int?] = Array(repeating: nil, count: operations.count)
        let entries = self.entries
        for operation in operations.indices.sorted(by: { entries.callEntry(of: $0) < entries.callEntry(of: $1) })
        where operations[operation].response == nil {
            earlierTwin[operation] = latestWithStep[operations[operation].step]
            latestWithStep[operations[operation].step] = operation
        }
        self.earlierTwin = earlierTwin
    }

    /// Runs the search to a verdict. Every loop turn places an operation (at most `statesMax` times),
    /// moves the cursor right (at most twice the list's length per configuration), or backs out of
    /// placements, each at most once, so the loop always ends.
    mutating func run() -> SearchResult {
        var cursor = entries.first
        var isScanningPending = false
        var needsReadPass = true
        while completedRemaining > 0 {
            if needsReadPass {
                needsReadPass = false
                switch placeFittingRead() {
                case .placed:
                    needsReadPass = true
                case .impossible, .ruledOut:  // `placeFittingRead` never returns `.ruledOut`.
                    cursor = entries.first  // No read fits: try the operations that change the value.
                    isScanningPending = false
                case .knownToFail:
                    // Rule 2: the read would lead to a known failure, so this configuration fails too.
                    guard let undone = backtrack() else { return failure() }
                    cursor = entries.after(entries.callEntry(of: undone))
                    isScanningPending = isPending[undone]
                case .limitReached:
                    return .inconclusive(statesExplored: statesExplored)
                }
                continue
            }
            // A completed operation has a return entry, and the scan stops at the first return entry.
            precondition(cursor != entries.tail, "the scan ran off the list with \(completedRemaining) left to place")
            if entries.isCall(cursor) {
                let operation = entries.operation(at: cursor)
                guard isPending[operation] == isScanningPending else {
                    cursor = entries.after(cursor)
                    continue
                }
                switch place(operation, isCommitted: false) {
                case .placed: needsReadPass = true
                case .impossible, .knownToFail, .ruledOut: cursor = entries.after(cursor)
                case .limitReached: return .inconclusive(statesExplored: statesExplored)
                }
            } else if !isScanningPending && pendingTotal > 0 {
                // Rule 3: every completed candidate was tried; now the unknown-outcome ones.
                isScanningPending = true
                cursor = entries.first
            } else {
                // This operation responded before every later call, so one of the candidates must come
                // next, and none can: an earlier choice was wrong.
                guard let undone = backtrack() else { return failure() }
                cursor = entries.after(entries.callEntry(of: undone))
                isScanningPending = isPending[undone]
            }
        }
        return .linearizable(statesExplored: statesExplored)
    }

    /// Rule 2: places the first candidate that changes nothing and fits the current value, committing
    /// to it. Returns `.impossible` if there is none.
    private mutating func placeFittingRead() -> Placement {
        var entry = entries.first
        while entry != entries.tail && entries.isCall(entry) {
            let operation = entries.operation(at: entry)
            let step = operations[operation].step
            if step.changesNothing && step.apply(to: state) != nil {
                let placement = place(operation, isCommitted: true)
                // Had the read fit before the last unknown-outcome operation, the read pass there
                // would have committed it, and that operation would not have been tried.
                precondition(placement != .ruledOut, "a fitting read did not need the operation before it")
                return placement
            }
            entry = entries.after(entry)
        }
        return .impossible
    }

    /// Whether the register holding `value` instead of the current value would let some candidate
    /// that does not fit now be placed: rule 4's test for an unknown-outcome operation leading to
    /// `value`, answered from a summary of the candidates computed once per configuration.
    private mutating func enablesSomeCandidate(_ value: ValueID) -> Bool {
        guard value != state else { return false }
        if enabling == nil {
            var summary = Enabling(values: [], anyChange: false)
            var entry = entries.first
            while entry != entries.tail && entries.isCall(entry) {
                let step = operations[entries.operation(at: entry)].step
                if step.apply(to: state) == nil {
                    switch step {
                    case .read(let observed): summary.values.insert(observed)
                    case .compareAndSet(let expected, _): summary.values.insert(expected)
                    case .compareMismatch: summary.anyChange = true  // It expects exactly the current value.
                    case .write: preconditionFailure("a write always fits")
                    }
                }
                entry = entries.after(entry)
            }
            enabling = summary
        }
        guard let summary = enabling else { return true }
        return summary.anyChange || summary.values.contains(value)
    }

    /// Places `operation` next if its reply is possible from the current value and the configuration
    /// it leads to is not dominated by a remembered failure (rule 1).
    private mutating func place(_ operation: Int, isCommitted: Bool) -> Placement {
        let step = operations[operation].step
        guard let after = step.apply(to: state) else { return .impossible }
        if let top = stack.last, isPending[top.operation], step.apply(to: top.stateBefore) != nil {
            return .ruledOut  // Rule 4: it would fit without the unknown-outcome operation just placed.
        }
        if let twin = earlierTwin[operation], !pending.contains(bitIndex[twin]) {
            return .ruledOut  // Rule 5: an identical unknown-outcome operation invoked earlier goes first.
        }
        if isPending[operation] && !enablesSomeCandidate(after) {
            return .ruledOut  // Rule 4, checked ahead: nothing could follow it.
        }
        mark(operation, placed: true)
        if let known = failures[FailureKey(completedHash: completedHash, state: after)],
            known.contains(where: { $0.completed == completed && $0.pending.isSubset(of: pending) })
        {
            mark(operation, placed: false)
            return .knownToFail
        }
        guard statesExplored < statesMax else {
            mark(operation, placed: false)
            return .limitReached
        }
        statesExplored += 1
        stack.append(Placed(operation: operation, stateBefore: state, isCommitted: isCommitted))
        enabling = nil
        state = after
        entries.lift(operation)
        if !isPending[operation] { completedRemaining -= 1 }
        return .placed
    }

    /// Backs out of the current configuration, remembering it as a failure, and of every committed
    /// placement before it (rule 2), up to and including the last free choice. Returns that choice's
    /// operation, so the scan can go on with the candidates after it, or `nil` when nothing is left
    /// to undo: no linearization exists.
    private mutating func backtrack() -> Int? {
        recordDeepest()
        while let placed = stack.popLast() {
            // A configuration entered by an unknown-outcome operation is searched under rule 4's
            // restriction, so its failure says nothing about the same configuration reached otherwise.
            if !isPending[placed.operation] {
                let key = FailureKey(completedHash: completedHash, state: state)
                failures[key, default: []].append(Failure(completed: completed, pending: pending))
            }
            mark(placed.operation, placed: false)
            state = placed.stateBefore
            enabling = nil
            entries.unlift(placed.operation)
            if !isPending[placed.operation] { completedRemaining += 1 }
            if !placed.isCommitted { return placed.operation }
        }
        return nil
    }

    private mutating func mark(_ operation: Int, placed: Bool) {
        switch (isPending[operation], placed) {
        case (false, true):
            completed.insert(bitIndex[operation])
            completedHash ^= zobristKeys[bitIndex[operation]]
        case (false, false):
            completed.remove(bitIndex[operation])
            completedHash ^= zobristKeys[bitIndex[operation]]
        case (true, true): pending.insert(bitIndex[operation])
        case (true, false): pending.remove(bitIndex[operation])
        }
    }

    /// Keeps the current prefix if it places more completed operations than any before, without the
    /// unknown-outcome operations at its end, which explain nothing.
    private mutating func recordDeepest() {
        let placedCompleted = completedTotal - completedRemaining
        guard placedCompleted > deepestCompleted else { return }
        deepestCompleted = placedCompleted
        var prefix = stack.map(\.operation)
        while let last = prefix.last, isPending[last] { prefix.removeLast() }
        deepest = prefix
    }

    private func failure() -> SearchResult {
        precondition(stack.isEmpty, "the search reports failure with \(stack.count) placements left")
        return .notLinearizable(prefix: deepest, statesExplored: statesExplored)
    }
}
