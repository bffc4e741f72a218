import CairnCore

/// The state a node MUST keep on stable storage before it answers anyone (Raft §5, Figure 2): its
/// current term and whom it voted for in that term; with them, how far it knew the log committed.
///
/// `commit` is not required for safety (it can be relearned from a leader). It is saved along with
/// term and vote changes only, so it is a lower bound; a restarted node re-applies at once what it
/// knows committed (this, its snapshot, its application's applied index) and learns the rest from a
/// leader.
public struct HardState: Sendable, Equatable, CustomStringConvertible {
    public var term: Term
    public var vote: NodeID?
    public var commit: LogIndex

    public init(term: Term = 0, vote: NodeID? = nil, commit: LogIndex = 0) {
        self.term = term
        self.vote = vote
        self.commit = commit
    }

    public var description: String {
        "term=\(term) vote=\(vote.map(\.description) ?? "none") commit=\(commit)"
    }
}

/// What a snapshot covers: the last entry it replaces and the configuration in force at that entry
/// (Raft §7: "last included index", "last included term", "latest configuration").
public struct SnapshotMetadata: Sendable, Equatable, CustomStringConvertible {
    public var index: LogIndex
    public var term: Term
    public var configuration: ConfigurationState

    public init(index: LogIndex, term: Term, configuration: ConfigurationState) {
        self.index = index
        self.term = term
        self.configuration = configuration
    }

    public var description: String { "\(index)@\(term) \(configuration)" }
}

/// A snapshot of the application's state machine, opaque to Raft, with its metadata.
///
/// A new group's storage holds a *bootstrap* snapshot at index 0, term 0, carrying the initial
/// configuration and no data: that is how a core learns its first members without a special case.
public struct Snapshot: Sendable, Equatable, CustomStringConvertible {
    public var metadata: SnapshotMetadata
    public var data: [UInt8]

    public init(metadata: SnapshotMetadata, data: [UInt8]) {
        self.metadata = metadata
        self.data = data
    }

    /// The bootstrap snapshot of a new group whose members are `configuration`.
    public static func bootstrap(_ configuration: ConfigurationState) -> Snapshot {
        Snapshot(metadata: SnapshotMetadata(index: 0, term: 0, configuration: configuration), data: [])
    }

    public var description: String { "snapshot \(metadata) bytes=\(data.count)" }
}
