import CairnCore

/// The role of a node in its group at one moment (Raft §5.1, plus thesis §9.6's pre-candidate).
public enum RaftRole: String, Sendable, Equatable, CustomStringConvertible {
    case follower
    /// Asking whether it could win, without raising its term (thesis §9.6 PreVote).
    case preCandidate
    case candidate
    case leader

    public var description: String { rawValue }
}

/// What a leader knows about one follower's log (Raft Figure 2 `nextIndex`/`matchIndex`, plus the
/// flow-control state machine of etcd's `tracker.Progress`).
public struct Progress: Sendable, Equatable {
    /// How the leader sends to this follower.
    public enum State: Sendable, Equatable {
        /// Unsure where the logs agree: one append at a time, backing off on each rejection.
        case probe
        /// The logs agree through `match`: stream appends optimistically, up to `inflightAppendsMax`.
        case replicate
        /// The entries it needs are compacted away: send the snapshot at `index`, one chunk at a time.
        case snapshot(index: LogIndex, offset: Int)
        /// The entries it needs are compacted away and the application is preparing a snapshot to send
        /// (`RaftConfig.snapshotsOnDemand`); heartbeats keep the follower from campaigning meanwhile.
        case snapshotWanted
    }

    /// The highest index known to be replicated on the follower.
    public internal(set) var match: LogIndex
    /// The next index to send.
    public internal(set) var next: LogIndex
    public internal(set) var state: State = .probe
    /// The last index of each append in flight (replicate state), oldest first.
    var inflight: [LogIndex] = []
    /// A probe is out and unanswered; do not send another until a response or a heartbeat.
    var isProbeSent = false
    /// Heard from since the last CheckQuorum round.
    var isRecentlyActive = false
    /// The highest append sequence the follower acknowledged (ReadIndex, leases).
    var acknowledgedSequence: UInt64 = 0
    /// `match` at the last heartbeat, and how many heartbeats in a row it stayed there with appends in
    /// flight: two mean the appends were lost, so fall back to probing.
    var matchAtHeartbeat: LogIndex = 0
    var stalledHeartbeats = 0
    /// Heartbeats since the follower last answered, while a probe or a snapshot chunk is out: the
    /// probe's entries are sent again only every `probeResendHeartbeats` of them, a chunk every
    /// `snapshotResendHeartbeats` (a follower still writing a MiB to disk must not be sent the same
    /// MiB every 20 ms).
    var probeHeartbeats = 0
    /// A learner's entry bytes not yet paid off by ticks (`RaftConfig.learnerBytesPerTick`): another
    /// append goes out only while this is below one tick's allowance. Counted only while paced.
    var unpaidBytes = 0
    /// The leader's last index when it started replicating to this member: only entries up to it (the
    /// backlog) are paced, so a learner of a group that takes writes faster than its allowance still
    /// catches up (what is appended later flows as to a voter).
    var pacedThrough: LogIndex = 0

    init(match: LogIndex, next: LogIndex, pacedThrough: LogIndex = 0) {
        self.match = match
        self.next = next
        self.pacedThrough = pacedThrough
    }

    /// Goes back to probing from just after `match`, forgetting optimistic sends.
    mutating func becomeProbe(next newNext: LogIndex) {
        state = .probe
        next = max(newNext, match.next)
        inflight.removeAll()
        isProbeSent = false
        stalledHeartbeats = 0
        probeHeartbeats = 0
        // Probes are not paced: whatever they added is forgiven, so a learner that was unreachable
        // for a while does not come back to a debt.
        unpaidBytes = 0
    }
}

/// A read waiting for a quorum to acknowledge an append sent after it arrived (thesis §6.4 step 3).
struct PendingRead: Sendable, Equatable {
    var request: RequestID
    var index: LogIndex
    var sequence: UInt64
}

/// An ongoing leadership transfer (thesis §3.10).
struct Transfer: Sendable, Equatable {
    var target: NodeID
    var elapsedTicks: Int
    var isTimeoutSent: Bool
}

/// Everything only a leader has. It exists exactly while the role is `.leader`.
struct LeaderState: Sendable, Equatable {
    /// One per member other than this node.
    var progress: [NodeID: Progress] = [:]
    /// The index of the empty entry this leader appended on election: its term has committed an entry
    /// once `commit` reaches it (needed before reads and configuration changes, thesis §6.4, §4.1).
    var termStartIndex: LogIndex
    /// The last append sequence number used.
    var sequence: UInt64 = 0
    /// `(first sequence sent in a tick, that tick)`, oldest first, for lease reads.
    var sequenceTicks: [(sequence: UInt64, tick: UInt64)] = []
    /// Reads waiting for leadership confirmation, in arrival order.
    var pendingReads: [PendingRead] = []
    /// Reads that arrived before this leader committed an entry in its term.
    var readsAwaitingCommit: [RequestID] = []
    /// A confirmation round for reads is out and not yet acknowledged by a quorum.
    var readRoundSequence: UInt64?
    var transfer: Transfer?
    /// Set once this leader sent TimeoutNow: a delayed transfer election could depose it at any time,
    /// so it serves no more lease reads in this term.
    var isLeaseForfeited = false
    /// The snapshot the application prepared to send (`RaftConfig.snapshotsOnDemand`), held only while
    /// a follower needs it.
    var outgoingSnapshot: Snapshot?

    static func == (lhs: LeaderState, rhs: LeaderState) -> Bool {
        lhs.progress == rhs.progress && lhs.termStartIndex == rhs.termStartIndex && lhs.sequence == rhs.sequence
            && lhs.sequenceTicks.map(\.sequence) == rhs.sequenceTicks.map(\.sequence)
            && lhs.sequenceTicks.map(\.tick) == rhs.sequenceTicks.map(\.tick) && lhs.pendingReads == rhs.pendingReads
            && lhs.readsAwaitingCommit == rhs.readsAwaitingCommit && lhs.readRoundSequence == rhs.readRoundSequence
            && lhs.transfer == rhs.transfer && lhs.isLeaseForfeited == rhs.isLeaseForfeited
            && lhs.outgoingSnapshot == rhs.outgoingSnapshot
    }
}

/// A snapshot a follower is assembling from chunks.
struct IncomingSnapshot: Sendable, Equatable {
    var metadata: SnapshotMetadata
    var totalBytes: Int
    var data: [UInt8]
}

/// Counts of things a core dropped or noticed, for metrics. Never used for decisions.
public struct RaftCounters: Sendable, Equatable {
    /// Messages from an older term, for another group, or otherwise not applicable.
    public internal(set) var staleMessages: UInt64 = 0
    /// Vote requests ignored because a leader was heard from recently (CheckQuorum stickiness).
    public internal(set) var ignoredVoteRequests: UInt64 = 0
    /// Snapshot chunks refused because their checksum or position was wrong.
    public internal(set) var rejectedSnapshotChunks: UInt64 = 0
    /// Elections this node started (pre-elections included).
    public internal(set) var campaigns: UInt64 = 0
    /// Elections this node started that were real (not pre-elections): each one increments the term.
    public internal(set) var elections: UInt64 = 0
    /// Times this node stepped down as leader because it had not heard from a quorum (CheckQuorum).
    public internal(set) var quorumLossStepDowns: UInt64 = 0
}
