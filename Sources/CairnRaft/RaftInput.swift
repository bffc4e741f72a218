import CairnCore

/// An application-chosen number that ties a proposal, read or admin request to its reply.
public struct RequestID: RawRepresentable, Hashable, Comparable, Sendable, CustomStringConvertible,
    ExpressibleByIntegerLiteral
{
    public var rawValue: UInt64

    public init(rawValue: UInt64) {
        self.rawValue = rawValue
    }

    public init(integerLiteral value: UInt64) {
        self.rawValue = value
    }

    public static func < (lhs: RequestID, rhs: RequestID) -> Bool { lhs.rawValue < rhs.rawValue }

    public static func == (lhs: RequestID, rhs: RequestID) -> Bool { lhs.rawValue == rhs.rawValue }

    public func hash(into hasher: inout Hasher) { hasher.combine(rawValue) }

    public var description: String { "r\(rawValue)" }
}

/// A change to the members of a group (thesis §4). The leader turns it into a configuration entry.
public enum MembershipChange: Sendable, Equatable, CustomStringConvertible {
    /// Adds a learner: it receives the log but does not vote (thesis §4.2.1, catch-up before voting).
    case addLearner(NodeID)
    /// Makes a learner a voter: a single-server change (thesis §4.1).
    case promoteLearner(NodeID)
    /// Removes a voter or a learner: a single-server change (thesis §4.1).
    case remove(NodeID)
    /// Replaces the whole voter set in one step through joint consensus (thesis §4.3): the leader appends
    /// C(old,new), and once that commits, appends C(new) by itself. Learners not named stay learners.
    case replaceVoters([NodeID])

    public var description: String {
        switch self {
        case .addLearner(let node): "add-learner \(node)"
        case .promoteLearner(let node): "promote \(node)"
        case .remove(let node): "remove \(node)"
        case .replaceVoters(let voters): "replace-voters " + Render.nodes(voters.sorted())
        }
    }
}

/// Something that happened to this node's member of one group. The core never asks "what time is it?".
public enum RaftInput: Sendable, Equatable {
    /// One unit of logical time passed. The shell MUST deliver ticks at a steady rate; every timeout in
    /// `RaftConfig` counts them.
    case tick
    /// A message from a peer, already decoded and checked to be for this group.
    case received(RaftMessage, from: NodeID)
    /// A client asks to append a command. Answered in `replies` with `.appended` (then watch `committed`)
    /// or a rejection.
    case propose([UInt8], request: RequestID)
    /// A client asks for a linearizable read (thesis §6.4). Answered in `reads` with the index the state
    /// machine must reach before the read is served, or in `replies` with a rejection.
    case readIndex(request: RequestID)
    /// The shell made every entry through `through` durable, and the entry there has `term`. A report
    /// for an entry that has since been replaced (different term) is ignored. Only durable entries count
    /// for the leader's own vote in commitment.
    case persisted(through: LogIndex, term: Term)
    /// The application saved its state machine as of `index`, which MUST be at most the last index it
    /// was given to apply. The core adds the term and configuration there, asks the shell to save the
    /// snapshot and drop the entries it covers, and keeps it to send to lagging followers (Raft §7).
    /// With `RaftConfig.snapshotsOnDemand`, `data` is empty: the application's durable state is the snapshot.
    case snapshotCreated(index: LogIndex, data: [UInt8])
    /// The snapshot a leader asked for (`RaftOutput.isSnapshotWanted`, `RaftConfig.snapshotsOnDemand`): the
    /// state machine as of `index`, an index the application applied. Sent to the followers that need it
    /// if the log still holds `index` (or it is the compaction point); otherwise ignored, and asked for again.
    case snapshotPrepared(index: LogIndex, data: [UInt8])
    /// An administrator asks to change the members. Only a leader accepts.
    case changeMembership(MembershipChange, request: RequestID)
    /// An administrator asks the leader to hand leadership to `to` (thesis §3.10).
    case transferLeadership(to: NodeID, request: RequestID)
    /// The application is ready for more committed entries (a step hands over at most
    /// `RaftConfig.applyBytesMax`). Nothing else happens: no timer moves, unlike a tick.
    case applyCommitted
}

extension RaftInput: CustomStringConvertible {
    /// One line for traces and golden files.
    public var description: String {
        switch self {
        case .tick: "tick"
        case .applyCommitted: "apply committed"
        case .received(let message, let from): "receive from \(from): \(message)"
        case .propose(let command, let request): "propose \(request) \"\(Render.bytes(command))\""
        case .readIndex(let request): "read \(request)"
        case .persisted(let index, let term): "persisted through \(index)@\(term)"
        case .snapshotCreated(let index, let data): "snapshot created at \(index) bytes=\(data.count)"
        case .snapshotPrepared(let index, let data): "snapshot prepared at \(index) bytes=\(data.count)"
        case .changeMembership(let change, let request): "change membership \(request): \(change)"
        case .transferLeadership(let target, let request): "transfer leadership \(request) to \(target)"
        }
    }
}

/// A message to send to one peer.
public struct OutboundMessage: Sendable, Equatable, CustomStringConvertible {
    public var to: NodeID
    public var message: RaftMessage

    public init(to: NodeID, message: RaftMessage) {
        self.to = to
        self.message = message
    }

    public var description: String { "->\(to) \(message)" }
}

/// Writes the shell MUST make durable, as one atomic batch if it can, before it sends any message of the
/// same output. If the storage cannot write them atomically it applies them in field order.
public struct DurableWrites: Sendable, Equatable {
    /// Save this snapshot, replacing the old one, and delete every entry at or below its index.
    public var snapshot: Snapshot?
    /// Delete every entry at or after this index (a follower's conflicting suffix, Raft §5.3).
    public var truncateFrom: LogIndex?
    /// Append these entries; they are contiguous and follow the log left by the fields above.
    public var entries: [Entry] = []
    /// Save this term, vote and commit index, replacing the old ones (present when the term or vote
    /// changed; the commit index is a lower bound).
    public var hardState: HardState?

    public init() {}

    /// Whether there is nothing to write.
    public var isEmpty: Bool { snapshot == nil && truncateFrom == nil && entries.isEmpty && hardState == nil }
}

/// A linearizable read that may now be served (thesis §6.4): once the state machine has applied
/// `index`, reading it returns a value at least as new as any write acknowledged before the read arrived.
public struct ReadResult: Sendable, Equatable, CustomStringConvertible {
    public var request: RequestID
    public var index: LogIndex

    public init(request: RequestID, index: LogIndex) {
        self.request = request
        self.index = index
    }

    public var description: String { "read \(request) at \(index)" }
}

/// The answer to a proposal, read, membership change or transfer request.
public struct RaftReply: Sendable, Equatable, CustomStringConvertible {
    public var request: RequestID
    public var outcome: Outcome

    public init(request: RequestID, outcome: Outcome) {
        self.request = request
        self.outcome = outcome
    }

    /// What became of a request.
    public enum Outcome: Sendable, Equatable {
        /// The proposal or configuration change is at `index` in `term`. It succeeded if and only if an
        /// entry with this index *and term* later appears in `committed`.
        case appended(index: LogIndex, term: Term)
        /// The leadership transfer started; watch the role and term for its end.
        case transferStarted
        /// This node is not the leader; `leaderHint` is the leader it last heard from, if any.
        case notLeader(leaderHint: NodeID?)
        /// The leader refused the request, for `reason`.
        case rejected(RaftRejection)
    }

    public var description: String {
        switch outcome {
        case .appended(let index, let term): "\(request) appended \(index)@\(term)"
        case .transferStarted: "\(request) transfer started"
        case .notLeader(let hint): "\(request) not leader, hint=\(hint.map(\.description) ?? "none")"
        case .rejected(let reason): "\(request) rejected: \(reason)"
        }
    }
}

/// Why a leader refused a request. Each case says what the client can do about it.
public enum RaftRejection: Error, Sendable, Equatable, CustomStringConvertible {
    case transferInProgress(to: NodeID)
    case entryTooLarge(bytes: Int, limit: Int)
    case tooManyPendingReads(limit: Int)
    case configurationChangePending(index: LogIndex)
    case noEntryCommittedInTerm
    case invalidMembershipChange(String)
    case invalidTransferTarget(NodeID)
    case leadershipLost

    public var description: String {
        switch self {
        case .transferInProgress(let target):
            "leadership is being transferred to node \(target); retry on the new leader"
        case .entryTooLarge(let bytes, let limit):
            "command of \(bytes) bytes exceeds the limit of \(limit) bytes"
        case .tooManyPendingReads(let limit):
            "\(limit) reads are already waiting for leadership confirmation; retry later"
        case .configurationChangePending(let index):
            "the configuration change at index \(index) is not committed yet; retry once it is"
        case .noEntryCommittedInTerm:
            "the new leader has not committed an entry in its term yet; retry shortly"
        case .invalidMembershipChange(let why):
            "invalid membership change: \(why)"
        case .invalidTransferTarget(let node):
            "node \(node) cannot take leadership: it is not a voter other than the leader"
        case .leadershipLost:
            "this node stopped being leader before the request finished; retry on the new leader"
        }
    }
}

/// What one `step` asks the shell to do, in lane order. A shell that breaks the order has a bug.
public struct RaftOutput: Sendable, Equatable {
    /// 1. Make these durable (one atomic batch, fsync'd) BEFORE sending anything in `messages`: a vote or
    ///    an acknowledgement MUST NOT leave before the term, vote and entries it promises are on disk.
    public var writes = DurableWrites()
    /// 2. Send these, in order, after `writes` are durable. Loss, delay and duplication are all fine.
    public var messages: [OutboundMessage] = []
    /// 3a. Restore the state machine from this snapshot, before applying `committed`.
    public var snapshotToRestore: Snapshot?
    /// 3b. Apply these committed entries to the state machine, in order, after `writes` are durable.
    public var committed: [Entry] = []
    /// 4. Serve these reads once the state machine has applied their index.
    public var reads: [ReadResult] = []
    /// 5. Answer these requests.
    public var replies: [RaftReply] = []
    /// 6. Build a snapshot of the state machine as of its applied index, off the critical path, and hand
    ///    it back with `.snapshotPrepared` (`RaftConfig.snapshotsOnDemand` only): a follower needs entries
    ///    that are compacted away. Asked again on heartbeats while it is still wanted; one at a time is enough.
    public var isSnapshotWanted = false

    public init() {}
}
