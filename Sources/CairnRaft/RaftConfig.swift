import CairnCore

/// How one core behaves. Durations are in ticks (the shell turns wall time into ticks; DESIGN.md §8).
public struct RaftConfig: Sendable, Equatable {
    /// This node.
    public var id: NodeID
    /// The group this core replicates; stamped on every message it sends and checked on every one it gets.
    public var group: GroupID
    /// The shortest election timeout. Each timeout is drawn uniformly from
    /// `[electionTicksMin, 2 × electionTicksMin)` (Raft §5.2), and it is also the CheckQuorum period and
    /// the leader-stickiness window. Should be about 10× `heartbeatTicks`.
    public var electionTicksMin: Int
    /// How often a leader sends heartbeats (and retries probes and snapshot chunks).
    public var heartbeatTicks: Int
    /// Seeds the generator that draws election timeouts. Give each node a different seed.
    public var seed: UInt64
    /// Run a pre-election (thesis §9.6) so that a node that cannot win does not raise its term and
    /// disrupt the group when it rejoins.
    public var preVote: Bool
    /// A leader that has not heard from a quorum within `electionTicksMin` steps down, and a node that
    /// heard from a leader within `electionTicksMin` ignores vote requests (thesis §6.2, §9.6).
    public var checkQuorum: Bool
    /// Serve reads on a leader lease instead of a confirmation round (thesis §6.4.1).
    ///
    /// The lease is safe only under a clock assumption: no node's tick rate may run faster than the
    /// leader's by more than `leaseClockDriftTicks` ticks per `electionTicksMin` ticks. The leader counts
    /// its lease from when it *sent* the heartbeats a quorum acknowledged, and holds it for
    /// `electionTicksMin − leaseClockDriftTicks` ticks; followers will not vote for anyone else until
    /// `electionTicksMin` of *their* ticks pass after receiving them, and a restarted node waits
    /// `electionTicksMin` ticks before voting for anyone (it may have acknowledged the leader before it
    /// crashed). Requires `checkQuorum`. Leadership transfer forfeits the lease for the rest of the term.
    public var leaseReads: Bool
    /// The clock-drift allowance taken off the lease (see `leaseReads`).
    public var leaseClockDriftTicks: Int
    /// Appends a leader may have in flight to one follower in replicate state (pipelining window).
    public var inflightAppendsMax: Int
    /// Target bytes of entries in one append (one larger entry is still sent, alone).
    public var appendBytesMax: Int
    /// Bytes of committed entries handed to the application in one step (`RaftOutput.committed`; one
    /// larger entry is still handed over, alone). The rest follows in later steps, a tick being enough:
    /// a member catching up (a new replica receiving a partition's log) then applies it over many loop
    /// turns instead of holding one turn for the whole of it.
    public var applyBytesMax: Int
    /// Bytes of snapshot data in one InstallSnapshot chunk.
    public var snapshotChunkBytesMax: Int
    /// ReadIndex requests a leader queues at once.
    public var pendingReadsMax: Int
    /// Bytes of entries a leader sends one learner per tick, on average (0: no limit). A learner is a
    /// replica being added (a partition moving onto a node): without a limit it gets the whole log at
    /// the pipelining window's pace and writes and applies all of it at once, competing with every
    /// other write on its node and disk. Appends to a learner are cut to the bytes left this tick, an
    /// entry larger than that goes alone, and the excess is paid off by the next ticks before the next
    /// append goes out. Only the backlog is paced (the log as it was when this leader started sending
    /// to the learner): entries appended later flow as to a voter, so a learner catches up however
    /// fast its group takes writes. Voters are never held back.
    public var learnerBytesPerTick: Int = 0
    /// The application keeps its state machine durably and that state is the snapshot (as a partition's
    /// records in the store are). Log compaction then saves only the metadata (`.snapshotCreated` with
    /// empty data; the application MUST have made its state through that index durable by the time the
    /// compaction's writes are), so it costs no copy of the state however large it is. A leader that must
    /// send a snapshot asks for one in `RaftOutput.isSnapshotWanted`, and sends what the application hands
    /// back with `.snapshotPrepared`, as of any applied index still in its log. A follower that installs
    /// one saves its metadata only (the application restores the data, in the same batch).
    public var snapshotsOnDemand: Bool = false
    /// A deliberately wrong behaviour, for simulation only (see `_RaftInjectedBug`). Nil in production.
    public var _injectedBug: _RaftInjectedBug?

    public init(
        id: NodeID, group: GroupID = 1, electionTicksMin: Int = 10, heartbeatTicks: Int = 1, seed: UInt64 = 0,
        preVote: Bool = true, checkQuorum: Bool = true, leaseReads: Bool = false, leaseClockDriftTicks: Int = 1,
        inflightAppendsMax: Int = 4, appendBytesMax: Int = 1024 * 1024, applyBytesMax: Int = 64 * 1024,
        snapshotChunkBytesMax: Int = 256 * 1024, pendingReadsMax: Int = 1024
    ) {
        self.id = id
        self.group = group
        self.electionTicksMin = electionTicksMin
        self.heartbeatTicks = heartbeatTicks
        self.seed = seed
        self.preVote = preVote
        self.checkQuorum = checkQuorum
        self.leaseReads = leaseReads
        self.leaseClockDriftTicks = leaseClockDriftTicks
        self.inflightAppendsMax = inflightAppendsMax
        self.appendBytesMax = appendBytesMax
        self.applyBytesMax = applyBytesMax
        self.snapshotChunkBytesMax = snapshotChunkBytesMax
        self.pendingReadsMax = pendingReadsMax
    }

    /// Checks the settings against each other and against `Limits`.
    /// - Throws: `RaftConfigError` naming the field, its value and the rule it broke.
    public func validate() throws(RaftConfigError) {
        if id.rawValue == 0 { throw .invalid("id (0) must not be 0; node IDs start at 1") }
        if heartbeatTicks < 1 { throw .invalid("heartbeatTicks (\(heartbeatTicks)) must be at least 1") }
        if electionTicksMin <= heartbeatTicks {
            throw .invalid(
                "electionTicksMin (\(electionTicksMin)) must be greater than heartbeatTicks (\(heartbeatTicks)); 10× is typical"
            )
        }
        if electionTicksMin > Limits.raftElectionTicksMax {
            throw .invalid(
                "electionTicksMin (\(electionTicksMin)) must be at most \(Limits.raftElectionTicksMax); ticks are usually 10 ms"
            )
        }
        if inflightAppendsMax < 1 || inflightAppendsMax > Limits.raftInflightAppendsMax {
            throw .invalid("inflightAppendsMax (\(inflightAppendsMax)) must be in 1...\(Limits.raftInflightAppendsMax)")
        }
        if appendBytesMax < 1 || appendBytesMax > Limits.raftAppendBytesMax {
            throw .invalid("appendBytesMax (\(appendBytesMax)) must be in 1...\(Limits.raftAppendBytesMax)")
        }
        if applyBytesMax < 1 || applyBytesMax > Limits.raftAppendBytesMax {
            throw .invalid("applyBytesMax (\(applyBytesMax)) must be in 1...\(Limits.raftAppendBytesMax)")
        }
        if learnerBytesPerTick < 0 {
            throw .invalid("learnerBytesPerTick (\(learnerBytesPerTick)) must be at least 0 (0: no limit)")
        }
        if snapshotChunkBytesMax < 1 || snapshotChunkBytesMax > Limits.raftSnapshotChunkBytesMax {
            throw .invalid(
                "snapshotChunkBytesMax (\(snapshotChunkBytesMax)) must be in 1...\(Limits.raftSnapshotChunkBytesMax)")
        }
        if pendingReadsMax < 1 || pendingReadsMax > Limits.raftPendingReadsMax {
            throw .invalid("pendingReadsMax (\(pendingReadsMax)) must be in 1...\(Limits.raftPendingReadsMax)")
        }
        if leaseReads && !checkQuorum {
            throw .invalid("leaseReads needs checkQuorum: without it, followers may elect a new leader during a lease")
        }
        if leaseReads && (leaseClockDriftTicks < 0 || leaseClockDriftTicks >= electionTicksMin) {
            throw .invalid(
                "leaseClockDriftTicks (\(leaseClockDriftTicks)) must be in 0..<electionTicksMin (\(electionTicksMin))")
        }
    }
}

/// A deliberately wrong behaviour that proves the simulator's checkers can fail (issue 3, `cairn sim raft
/// --inject-bug NAME`), in the spirit of FoundationDB's BUGGIFY. Each one breaks Raft's safety, so it is
/// never set outside tests and simulation. While one is set, the core does not crash on the safety
/// violations it causes (a second vote in a term, a leader replacing a committed entry): it lets the
/// simulator's checkers find them. The shell-side bugs (`ack-before-fsync`, `forget-vote-on-restart`)
/// live in the simulator's shell, not here.
public enum _RaftInjectedBug: String, Sendable, Equatable, CaseIterable {
    /// Grant every vote request, even after voting for another candidate in the same term (breaks §5.2).
    case voteTwice = "vote-twice"
    /// A leader commits whatever it has made durable itself, without waiting for a quorum (breaks §5.4).
    case commitWithoutQuorum = "commit-without-quorum"
    /// A leader answers reads at once at its commit index, without confirming leadership (breaks §6.4).
    case readWithoutReadIndex = "read-without-readindex"
}

/// A configuration that cannot work. The text names the field, the value and the rule.
public enum RaftConfigError: Error, Equatable, Sendable, CustomStringConvertible {
    case invalid(String)

    public var description: String {
        switch self {
        case .invalid(let text): text
        }
    }
}

/// Why a core could not start from its storage.
public enum RaftStorageError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The storage could not be read (the text comes from the storage engine).
    case unavailable(String)
    /// The storage holds something that breaks Raft's rules, such as a gap in the log.
    case corrupt(String)

    public var description: String {
        switch self {
        case .unavailable(let text): "Raft storage unavailable: \(text)"
        case .corrupt(let text): "Raft storage corrupt: \(text)"
        }
    }
}

/// Why `RaftCore.init` failed.
public enum RaftStartError: Error, Equatable, Sendable, CustomStringConvertible {
    case config(RaftConfigError)
    case storage(RaftStorageError)

    public var description: String {
        switch self {
        case .config(let error): error.description
        case .storage(let error): error.description
        }
    }
}
