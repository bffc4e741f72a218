import CairnCore

/// One node's member of one Raft group, as a deterministic state machine with no I/O.
///
/// ## What it does
/// Raft (Ongaro & Ousterhout, "In Search of an Understandable Consensus Algorithm", 2014) keeps a
/// replicated log consistent across a group of nodes: it elects a leader (§5.2), the leader replicates
/// entries (§5.3), and an entry is committed once a quorum stores it, which is then final (§5.4). This
/// core also implements, from Ongaro's thesis ("Consensus: Bridging Theory and Practice", 2014):
/// single-server membership changes (§4.1), learners that catch up before voting (§4.2.1), joint
/// consensus for arbitrary changes (§4.3), leadership transfer (§3.10), ReadIndex and lease reads (§6.4),
/// log compaction with chunked snapshots (thesis §5; Raft §7), PreVote (§9.6) and CheckQuorum (§6.2).
///
/// ## How a shell drives it
/// Feed every event through `step(_:)` and carry out the returned `RaftOutput` lanes in order:
/// 1. The shell MUST make `writes` (of this output and every earlier one) durable (fsync) before it
///    sends a message whose `requiresDurability` is true: a vote request, a vote, an append or snapshot
///    acknowledgement MUST NOT leave before the term, vote or entries they depend on are on disk (Raft
///    Figure 2, "Persistent state … updated on stable storage before responding"). It MUST send no
///    message before the term and vote of this and earlier outputs are durable. Beyond that it MAY
///    send the others (a leader's appends and heartbeats, snapshot chunks, TimeoutNow, pre-votes)
///    while their output's entries are still being written: the leader counts its own entries only
///    once `.persisted` (thesis §10.2.1).
/// 2. The shell MUST send `messages`; it MAY drop, delay, duplicate or reorder them.
/// 3. The shell MUST restore `snapshotToRestore`, then apply `committed` in order, exactly once each.
///    A step hands over at most `RaftConfig.applyBytesMax` of them (at least one entry); the rest come
///    with later steps (`.applyCommitted` asks for them without moving any timer).
/// 4. The shell MUST serve each of `reads` only after the state machine has applied its index.
/// 5. The shell MUST answer `replies`.
///
/// The shell MUST deliver `.tick` at a steady rate, report `.persisted` after each write of entries,
/// route each message to the core of its `group`, and after a crash build a new core from storage with
/// `init(config:storage:appliedIndex:)`. The shell MUST NOT change storage other than by applying `writes`,
/// and MUST NOT make protocol decisions (retries, timeouts, whom to contact): the core does.
///
/// ## Legal role transitions
/// follower → pre-candidate (timeout, PreVote on) or candidate (timeout with PreVote off, or TimeoutNow);
/// pre-candidate → candidate (quorum of pre-votes) or follower; candidate → leader (quorum of votes),
/// candidate (timeout, next term) or follower; leader → follower (higher term, lost quorum, removed).
/// A node that is not a voter in its latest configuration never leaves follower, unless that
/// configuration is uncommitted and removed it (see `isPromotable`). Anything else crashes
/// through `precondition`, as do broken invariants, which `checkInvariants` tests after every step.
///
/// ## Deviations from the paper, and why
/// - The log lives in memory (`RaftLog`) and storage is read only at start: the core stays a value the
///   simulator can copy; the application bounds memory by taking snapshots. The latest snapshot's data is
///   held in memory too, to send it; chunks go one at a time (stop-and-wait), retried on heartbeats.
///   With `RaftConfig.snapshotsOnDemand` the application's durable state is the snapshot instead:
///   compaction saves metadata only, and a leader asks for a snapshot's data when a follower needs one
///   (as etcd's and CockroachDB's state machines in the store are their snapshots), holding it only
///   while it is being sent.
/// - The leader counts its own entries for commitment only once the shell reports them `.persisted`
///   (thesis §10.2.1 lets the leader write in parallel with replication; this is that, made explicit).
/// - A rejected append carries etcd's conflict hint (largest index whose term is at most the leader's
///   `previousTerm`) rather than the paper's first index of the conflicting term: the leader then skips
///   a whole diverging suffix in one round trip (§5.3, last paragraphs).
/// - Any node answers a vote request, learners included: the candidate's configuration decides whose
///   vote counts, and the learner may already be a voter in it (as in etcd).
/// - With CheckQuorum, a node that heard from a leader within `electionTicksMin` ignores vote requests
///   that are not marked as a transfer, and a node that receives an append from an older term answers
///   it so that a stale leader learns the newer term (etcd's handling; thesis §4.2.3, §9.6).
/// - Snapshot chunks carry a CRC32C checksum, checked before a byte is kept.
/// - A node removed by an uncommitted configuration may still campaign (votes counted by that latest
///   configuration), so that a leader failing right after appending its own removal cannot stall the
///   group (`isPromotable`).
public struct RaftCore: Sendable {
    /// The settings this core was built with (validated).
    public let config: RaftConfig
    /// This node's role now. Changes only through `transition(to:)`, which rejects illegal transitions.
    public internal(set) var role: RaftRole = .follower
    /// The current term (durable: part of `HardState`).
    public internal(set) var term: Term
    /// Whom this node voted for in `term`, if anyone (durable: part of `HardState`).
    public internal(set) var vote: NodeID?
    /// The leader this node follows (itself when leader), if it knows one.
    public internal(set) var leader: NodeID?
    /// The highest index known to be committed. Never decreases.
    public internal(set) var commitIndex: LogIndex
    /// The configuration in force: the latest one in the log, committed or not (thesis §4.1).
    public internal(set) var configuration: ConfigurationState
    /// Counts of dropped and refused messages, for metrics.
    public internal(set) var counters = RaftCounters()

    var configurationIndex: LogIndex
    var log: RaftLog
    var snapshot: Snapshot
    /// The last index handed to the application (or restored from a snapshot).
    var appliedIndex: LogIndex
    /// Entries through here are durable on this node.
    var durableIndex: LogIndex
    /// Whether the application's state machine starts empty and must first restore `snapshot`.
    /// Whether the application must still restore the snapshot (handed over at the next step): until
    /// then `lastAppliedIndex` says where the application will be, not where its stored state is.
    public internal(set) var isRestorePending: Bool
    var lastSavedHardState: HardState
    var prng: SplitMix64
    var ticks: UInt64 = 0
    /// Ticks since the last sign of a live leader (follower), the start of an election (candidate), or
    /// the last CheckQuorum round (leader).
    var electionElapsed = 0
    var randomizedElectionTicks: Int
    var heartbeatElapsed = 0
    /// Votes received as (pre-)candidate: voter → granted.
    var votes: [NodeID: Bool] = [:]
    /// Non-nil exactly while leader. (Kept beside `role` rather than inside an enum payload because Swift's
    /// exclusivity rules make mutating a payload while reading the rest of `self` awkward.)
    var leaderState: LeaderState?
    var incomingSnapshot: IncomingSnapshot?

    /// Starts a core from what `storage` holds: term, vote, commit, snapshot and log (after a crash, or
    /// for a new group's bootstrap storage).
    /// - Parameters:
    ///   - appliedIndex: the index the application's state machine has already applied, if it keeps its
    ///     state durably (the commit index starts at least there). If nil, the state machine starts
    ///     empty: the first `step` asks it to restore the snapshot and re-apply the entries known
    ///     committed (up to the saved commit index, a lower bound); the rest follow once a leader says.
    /// - Throws: `RaftStartError` if the config is invalid or the storage unreadable or inconsistent.
    public init(config: RaftConfig, storage: some RaftLogStorage, appliedIndex: LogIndex? = nil) throws(RaftStartError)
    {
        do {
            try config.validate()
        } catch {
            throw .config(error)
        }
        let hardState: HardState
        let snapshot: Snapshot
        let entries: [Entry]
        do {
            hardState = try storage.hardState()
            snapshot = try storage.snapshot()
            entries = try storage.entries(from: snapshot.metadata.index.next, through: try storage.lastIndex())
        } catch {
            throw .storage(error)
        }
        let log = try Self.checkedLog(snapshot: snapshot.metadata, entries: entries)
        guard hardState.commit <= log.lastIndex, log.lastTerm <= hardState.term || entries.isEmpty else {
            throw .storage(
                .corrupt("hard state \(hardState) does not fit log ending at \(log.lastIndex)@\(log.lastTerm)"))
        }
        if let appliedIndex, appliedIndex > log.lastIndex {
            throw .storage(.corrupt("applied index \(appliedIndex) is beyond the log's end \(log.lastIndex)"))
        }
        // A snapshot saved as metadata only has nothing to restore: the application's own state must
        // cover it. If it does not, the entries in between are gone from both.
        if config.snapshotsOnDemand, snapshot.metadata.index > 0, snapshot.data.isEmpty,
            (appliedIndex ?? 0) < snapshot.metadata.index
        {
            throw .storage(
                .corrupt(
                    "applied index \(appliedIndex ?? 0) is behind the log's compaction point \(snapshot.metadata.index)"
                        + " (a snapshot kept as metadata only): the state machine lost writes the log no longer holds"))
        }
        self.config = config
        self.term = hardState.term
        self.vote = hardState.vote
        // The saved commit index is a lower bound (it is saved with term and vote changes only), and
        // whatever the application applied was committed.
        self.commitIndex = max(hardState.commit, snapshot.metadata.index, appliedIndex ?? 0)
        self.log = log
        self.snapshot = snapshot
        let configured = log.lastConfiguration() ?? (snapshot.metadata.index, snapshot.metadata.configuration)
        self.configurationIndex = configured.0
        self.configuration = configured.1
        self.durableIndex = log.lastIndex
        // An empty state machine restores even a snapshot with no data, so that it learns the index it is at.
        let hasSnapshotState = snapshot.metadata.index > 0 || !snapshot.data.isEmpty
        self.isRestorePending = appliedIndex.map { $0 < snapshot.metadata.index } ?? hasSnapshotState
        self.appliedIndex = max(min(appliedIndex ?? 0, self.commitIndex), snapshot.metadata.index)
        self.lastSavedHardState = HardState(term: term, vote: vote, commit: commitIndex)
        self.prng = SplitMix64(seed: config.seed)
        self.randomizedElectionTicks = config.electionTicksMin
        self.randomizedElectionTicks = drawElectionTimeout()
    }

    static func checkedLog(snapshot: SnapshotMetadata, entries: [Entry]) throws(RaftStartError) -> RaftLog {
        var expected = snapshot.index.next
        var lastTerm = snapshot.term
        for entry in entries {
            guard entry.index == expected, entry.term >= lastTerm else {
                throw .storage(.corrupt("entry \(entry) follows \(expected.previous)@\(lastTerm)"))
            }
            expected = expected.next
            lastTerm = entry.term
        }
        return RaftLog(snapshotIndex: snapshot.index, snapshotTerm: snapshot.term, entries: entries)
    }

    /// Advances the state machine by one input. Same state plus same input gives the same output.
    public mutating func step(_ input: RaftInput) -> RaftOutput {
        var output = RaftOutput()  // One accumulator; every path reaches `finishStep`.
        let before = HardState(term: term, vote: vote, commit: commitIndex)
        switch input {
        case .tick:
            tick(into: &output)
        case .received(let message, let from):
            receive(message, from: from, into: &output)
        case .propose(let command, let request):
            propose(command, request: request, into: &output)
        case .readIndex(let request):
            readIndex(request: request, into: &output)
        case .persisted(let index, let term):
            persisted(through: index, term: term, into: &output)
        case .snapshotCreated(let index, let data):
            snapshotCreated(index: index, data: data, into: &output)
        case .snapshotPrepared(let index, let data):
            snapshotPrepared(index: index, data: data, into: &output)
        case .changeMembership(let change, let request):
            changeMembership(change, request: request, into: &output)
        case .transferLeadership(let target, let request):
            transferLeadership(to: target, request: request, into: &output)
        case .applyCommitted:
            break  // `finishStep` hands over the next committed entries.
        }
        finishStep(into: &output)
        checkInvariants(before: before)
        return output
    }

    /// Adds what every step must end with: the hard state if the term or vote changed (lane 1), and
    /// newly committed entries for the application (lane 3).
    ///
    /// A change of the commit index alone is not saved: safety needs only the term and vote on stable
    /// storage (Raft §5, Figure 2), and a restarted node learns the commit index again from its leader
    /// or from its application's applied index. Saving it on every advance cost a store write per
    /// group per loop turn under load (callgrind: a sixth of the storage thread's memtable inserts).
    mutating func finishStep(into output: inout RaftOutput) {
        let hardState = HardState(term: term, vote: vote, commit: commitIndex)
        if hardState.term != lastSavedHardState.term || hardState.vote != lastSavedHardState.vote {
            output.writes.hardState = hardState
            lastSavedHardState = hardState
        }
        if isRestorePending {
            isRestorePending = false
            output.snapshotToRestore = snapshot
            appliedIndex = snapshot.metadata.index
        }
        if commitIndex > appliedIndex {
            // At most `applyBytesMax` (but at least one entry); the rest with the next steps.
            let handed = log.entries(from: appliedIndex.next, through: commitIndex, bytesMax: config.applyBytesMax)
            output.committed.append(contentsOf: handed)
            appliedIndex = handed.last!.index
        }
    }

    // MARK: Queries

    /// The index of the last entry in the log.
    public var lastIndex: LogIndex { log.lastIndex }
    /// The term of the last entry in the log.
    public var lastTerm: Term { log.lastTerm }
    /// The index of the last entry handed to the application.
    public var lastAppliedIndex: LogIndex { appliedIndex }
    /// Whether committed entries wait to be handed to the application (see `.applyCommitted`).
    public var hasUnappliedEntries: Bool { commitIndex > appliedIndex }
    /// The metadata of the snapshot the log starts after.
    public var snapshotMetadata: SnapshotMetadata { snapshot.metadata }
    /// The entries held in memory (after the snapshot), for checkers and tests.
    public var entries: [Entry] { log.entries }
    /// The term of the entry at `index`, if it is in the log or is the snapshot's last entry.
    public func term(at index: LogIndex) -> Term? { log.term(at: index) }
    /// A leader's view of a follower's replication, for operators and membership decisions (is a learner
    /// caught up enough to promote?). Nil unless leader and `node` is another member.
    public func progress(of node: NodeID) -> Progress? { leaderState?.progress[node] }
    /// Whether a leadership transfer is under way (leader only).
    public var transferTarget: NodeID? { leaderState?.transfer?.target }

    /// Whether `configuration` is committed (a node it leaves out is no longer needed for any quorum).
    public var isConfigurationCommitted: Bool { configurationIndex <= commitIndex }
    /// The index of the entry (or snapshot) that set `configuration`.
    public var configurationEntryIndex: LogIndex { configurationIndex }

    // MARK: Invariants

    /// Who and where, for invariant failure messages (only built when one fails).
    private var invariantContext: String { "node \(config.id) term \(term) role \(role)" }

    /// Checks what must hold after every step. Cheap enough to run always (STYLE.md §2.6).
    func checkInvariants(before: HardState) {
        precondition(term >= before.term, "\(invariantContext): term went back from \(before.term)")
        if term == before.term, let earlier = before.vote, config._injectedBug != .voteTwice {
            precondition(
                vote == earlier, "\(invariantContext): voted for \(vote.map(\.description) ?? "none") after \(earlier)")
        }
        precondition(
            commitIndex >= before.commit,
            "\(invariantContext): commit went back from \(before.commit) to \(commitIndex)")
        precondition(
            commitIndex <= log.lastIndex, "\(invariantContext): commit \(commitIndex) beyond log end \(log.lastIndex)")
        precondition(log.snapshotIndex <= appliedIndex, "\(invariantContext): snapshot \(log.snapshotIndex) > applied")
        precondition(
            appliedIndex <= commitIndex, "\(invariantContext): applied \(appliedIndex) > commit \(commitIndex)")
        precondition(durableIndex <= log.lastIndex, "\(invariantContext): durable \(durableIndex) beyond log end")
        precondition(log.lastTerm <= term, "\(invariantContext): log has term \(log.lastTerm) from the future")
        precondition(snapshot.metadata.index == log.snapshotIndex, "\(invariantContext): snapshot and log disagree")
        precondition(
            config.snapshotsOnDemand || leaderState?.outgoingSnapshot == nil,
            "\(invariantContext): a prepared snapshot without snapshotsOnDemand")
        precondition((role == .leader) == (leaderState != nil), "\(invariantContext): leader state without leadership")
        switch role {
        case .leader:
            checkLeaderInvariants()
        case .candidate:
            precondition(
                vote == config.id || config._injectedBug == .voteTwice,
                "\(invariantContext): a candidate votes for itself (§5.2)")
            precondition(votes[config.id] == true, "\(invariantContext): a candidate counts its own vote")
        case .preCandidate:
            precondition(votes[config.id] == true, "\(invariantContext): a pre-candidate counts its own pre-vote")
        case .follower:
            precondition(votes.isEmpty, "\(invariantContext): a follower holds no votes")
        }
    }

    private func checkLeaderInvariants() {
        guard let leaderState else { return }
        precondition(leader == config.id, "\(invariantContext): a leader follows itself")
        precondition(
            vote == config.id || config._injectedBug == .voteTwice,
            "\(invariantContext): a leader voted for itself in its term")
        precondition(log.lastTerm == term, "\(invariantContext): a leader's last entry is from its own term")
        precondition(
            leaderState.progress[config.id] == nil, "\(invariantContext): a leader tracks no progress for itself")
        for (node, progress) in leaderState.progress {
            precondition(progress.match < progress.next, "\(invariantContext): follower \(node) match >= next")
            precondition(
                progress.match <= log.lastIndex, "\(invariantContext): follower \(node) matched beyond our log")
        }
    }
}
