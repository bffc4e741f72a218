import CairnCore
import CairnRaft

/// Checks Raft's safety properties (Raft Figure 3) as the simulation runs, incrementally, so that the
/// cost per step stays small however long the logs grow. The simulator calls it after every step that
/// could matter; the first violation is kept and ends the run.
///
/// How each property is checked:
/// - **Election Safety**: the leader of each term is remembered; a second node leading the same term
///   is a violation.
/// - **Log Matching**: every entry any node writes is remembered by (index, term), with its content and
///   the term of the entry before it in that node's log. A second write of the same (index, term) must
///   have the same content and the same predecessor term. By induction down the log this is exactly
///   "same index and term implies identical prefixes", at O(1) per written entry.
/// - **Leader Completeness**: each index's commit is remembered with the term of its entry and the term in
///   which it was first known committed. A new leader must hold every entry committed in an earlier term
///   (checked when it takes office; a leader's log only grows in its term).
/// - **State Machine Safety**: nodes must agree on the entry term at each committed index, apply the same
///   entry at each index, and reach the same state digest after it (snapshots included).
/// - **Read Freshness** floors come from `committedIndexMax`: a read must be served at or above the highest
///   commit known anywhere when it arrived (ReadIndex's guarantee, thesis §6.4).
struct SafetyChecker {
    private struct WrittenEntry {
        var previousTerm: Term?
        var entry: Entry
        var node: NodeID
    }

    private struct CommitRecord {
        var entryTerm: Term?
        var commitTerm: Term
        var node: NodeID
    }

    private struct AppliedRecord {
        var entry: Entry
        var digest: UInt64
        var node: NodeID
    }

    private var leaders: [Term: NodeID] = [:]
    /// `written[i - 1]`: every distinct entry written at index i, one per term (rarely more than one).
    private var written: [[WrittenEntry]] = []
    /// `commits[i - 1]` is the record of index i.
    private var commits: [CommitRecord] = []
    /// `applied[i - 1]` is the first application of index i anywhere.
    private var applied: [AppliedRecord] = []
    private(set) var violation: SimViolation?
    /// `violation != nil`, kept as a plain flag because the run loop asks after every event.
    private(set) var hasViolation = false
    private(set) var elections = 0

    /// The highest index known committed anywhere.
    var committedIndexMax: LogIndex { LogIndex(UInt64(commits.count)) }
    /// The highest index applied anywhere.
    var appliedIndexMax: LogIndex { LogIndex(UInt64(applied.count)) }

    private mutating func fail(_ check: SimCheck, _ timeMs: UInt64, _ detail: String) {
        if violation == nil { violation = SimViolation(check: check, timeMs: timeMs, detail: detail) }
        hasViolation = true
    }

    // MARK: Election Safety and Leader Completeness

    /// A node just became leader.
    mutating func noteNewLeader(_ core: RaftCore, timeMs: UInt64) {
        elections += 1
        let id = core.config.id
        if let other = leaders[core.term], other != id {
            fail(.electionSafety, timeMs, "nodes \(other) and \(id) both lead term \(core.term)")
            return
        }
        leaders[core.term] = id
        let snapshotIndex = core.snapshotMetadata.index
        for position in commits.indices {
            let record = commits[position]
            let index = LogIndex(UInt64(position + 1))
            guard record.commitTerm < core.term, index >= snapshotIndex, let entryTerm = record.entryTerm else {
                continue
            }
            let held = core.term(at: index)
            if held != entryTerm {
                fail(
                    .leaderCompleteness, timeMs,
                    "leader \(id) of term \(core.term) holds \(held.map { "term \($0)" } ?? "nothing") at index \(index), "
                        + "but the entry there of term \(entryTerm) was committed in term \(record.commitTerm) "
                        + "(first seen committed by node \(record.node))")
                return
            }
        }
    }

    // MARK: Log Matching

    /// `core` (after its step) asked to write `entries`; they are now at the end of its log.
    mutating func noteWritten(_ entries: [Entry], by core: RaftCore, timeMs: UInt64) {
        var previousTerm = entries.first.flatMap { $0.index > 0 ? core.term(at: $0.index.previous) : nil }
        for entry in entries {
            let position = Int(entry.index.rawValue) - 1
            let id = core.config.id
            while written.count <= position { written.append([]) }
            if let earlier = written[position].first(where: { $0.entry.term == entry.term }) {
                if earlier.entry != entry {
                    fail(
                        .logMatching, timeMs,
                        "node \(id) wrote \(entry) but node \(earlier.node) wrote \(earlier.entry) at the same index and term"
                    )
                    return
                }
                if let previousTerm, let earlierPrevious = earlier.previousTerm, previousTerm != earlierPrevious {
                    fail(
                        .logMatching, timeMs,
                        "entry \(entry.index)@\(entry.term) follows term \(previousTerm) on node \(id) "
                            + "but term \(earlierPrevious) on node \(earlier.node)")
                    return
                }
            } else {
                written[position].append(WrittenEntry(previousTerm: previousTerm, entry: entry, node: id))
            }
            previousTerm = entry.term
        }
    }

    // MARK: State Machine Safety

    /// `core`'s commit index rose from `before` in its last step.
    mutating func noteCommitted(by core: RaftCore, from before: LogIndex, timeMs: UInt64) {
        let id = core.config.id
        var index = before.next
        while index <= core.commitIndex {
            let entryTerm = core.term(at: index)
            let position = Int(index.rawValue) - 1
            if position < commits.count {
                if let known = commits[position].entryTerm, let entryTerm, known != entryTerm {
                    fail(
                        .stateMachineSafety, timeMs,
                        "node \(id) committed index \(index) with term \(entryTerm), "
                            + "node \(commits[position].node) with term \(known)")
                    return
                }
                if commits[position].entryTerm == nil { commits[position].entryTerm = entryTerm }
                if core.term < commits[position].commitTerm { commits[position].commitTerm = core.term }
            } else {
                while commits.count < position {
                    commits.append(CommitRecord(entryTerm: nil, commitTerm: core.term, node: id))
                }
                commits.append(CommitRecord(entryTerm: entryTerm, commitTerm: core.term, node: id))
            }
            index = index.next
        }
    }

    /// `node` applied `entry`, and its state machine's digest is now `digest`.
    mutating func noteApplied(_ entry: Entry, node: NodeID, digest: UInt64, timeMs: UInt64) {
        let position = Int(entry.index.rawValue) - 1
        if position < commits.count, let term = commits[position].entryTerm, term != entry.term {
            fail(
                .stateMachineSafety, timeMs,
                "node \(node) applied \(entry) but the entry committed there has term \(term)")
            return
        }
        if position < applied.count {
            let first = applied[position]
            if first.entry != entry {
                fail(
                    .stateMachineSafety, timeMs,
                    "node \(node) applied \(entry), node \(first.node) applied \(first.entry)")
            } else if first.digest != digest {
                fail(
                    .stateMachineSafety, timeMs,
                    "node \(node) and node \(first.node) have different states after applying index \(entry.index)")
            }
            return
        }
        guard position == applied.count else {
            fail(
                .stateMachineSafety, timeMs,
                "node \(node) applied index \(entry.index) before any node applied index \(applied.count + 1)")
            return
        }
        applied.append(AppliedRecord(entry: entry, digest: digest, node: node))
    }

    /// `node` restored a snapshot at `index` whose state has `digest`.
    mutating func noteRestored(index: LogIndex, node: NodeID, digest: UInt64, timeMs: UInt64) {
        guard index > 0 else { return }
        let position = Int(index.rawValue) - 1
        guard position < applied.count else {
            fail(.stateMachineSafety, timeMs, "node \(node) restored a snapshot at \(index), beyond anything applied")
            return
        }
        if applied[position].digest != digest {
            fail(
                .stateMachineSafety, timeMs,
                "node \(node) restored a snapshot at \(index) whose state differs from node \(applied[position].node)'s"
            )
        }
    }

    // MARK: Read Freshness

    /// A read that arrived when `floor` was the highest commit anywhere was served at `index`.
    mutating func noteRead(index: LogIndex, floor: LogIndex, node: NodeID, request: RequestID, timeMs: UInt64) {
        if index < floor {
            fail(
                .readFreshness, timeMs,
                "node \(node) served read \(request) at index \(index), but index \(floor) was committed before it arrived"
            )
        }
    }

    /// Records a violation found elsewhere (liveness, recovery, linearizability).
    mutating func report(_ check: SimCheck, timeMs: UInt64, _ detail: String) {
        fail(check, timeMs, detail)
    }
}
