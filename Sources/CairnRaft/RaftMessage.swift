import CairnCore

/// A message between the cores of one group on different nodes.
///
/// Every message carries the sender's `group` (so one peer connection can carry many groups) and the
/// sender's `term` (Raft §5.1: a node that sees a larger term adopts it; a message from a smaller term is
/// stale). The kind says what it is. Heartbeats are `appendEntries` with no entries, as in the paper.
public struct RaftMessage: Sendable, Equatable, CustomStringConvertible {
    public var group: GroupID
    public var term: Term
    public var kind: Kind

    public init(group: GroupID, term: Term, kind: Kind) {
        self.group = group
        self.term = term
        self.kind = kind
    }

    /// The kinds of Raft message.
    public enum Kind: Sendable, Equatable {
        /// Asks for a vote (Raft §5.2) or, if `isPreVote`, asks whether a vote *would* be granted without
        /// anyone changing term (thesis §9.6). `isTransfer` marks an election started by TimeoutNow
        /// (thesis §3.10), which voters honour even though they heard from a leader recently.
        case requestVote(lastLogIndex: LogIndex, lastLogTerm: Term, isPreVote: Bool, isTransfer: Bool)
        /// The answer to `requestVote`. For a granted pre-vote, `term` is the term the candidate asked for.
        case requestVoteResponse(granted: Bool, isPreVote: Bool)
        /// Replicates entries after `(previousIndex, previousTerm)` (Raft §5.3), or with no entries is a
        /// heartbeat. `sequence` increases with every append a leader sends; the response echoes it, which
        /// is how ReadIndex learns that a quorum still follows this leader (thesis §6.4).
        case appendEntries(AppendEntries)
        /// The answer to `appendEntries`.
        case appendEntriesResponse(AppendEntriesResponse)
        /// One chunk of a snapshot (Raft §7), checksummed.
        case installSnapshot(SnapshotChunk)
        /// The answer to one chunk: how many bytes the follower holds, or that it is done.
        case installSnapshotResponse(snapshotIndex: LogIndex, receivedBytes: Int, isComplete: Bool)
        /// Tells the chosen target of a leadership transfer to start an election now (thesis §3.10).
        case timeoutNow
    }

    public var description: String {
        "\(kind) term=\(term)"
    }

    /// Whether the shell must make the writes of this output, and of every earlier output, durable
    /// before sending this message: a real vote request or vote (the term and vote), an append
    /// acknowledgement (the entries, and a term adopted from the append) and a snapshot acknowledgement.
    /// The others (a leader's appends and heartbeats, snapshot chunks, TimeoutNow, pre-votes) need only
    /// the sender's term and vote durable (a single voter elects itself and appends in one step: its
    /// new term must not be revealed before it is on disk, or a restart could reuse it); its own new
    /// entries may still be in flight to disk (thesis §10.2.1: the leader counts them for commitment
    /// only once `.persisted`). So heartbeats keep flowing while a busy node's storage lags.
    public var requiresDurability: Bool {
        switch kind {
        case .requestVote(_, _, let isPreVote, _), .requestVoteResponse(_, let isPreVote): !isPreVote
        case .appendEntriesResponse, .installSnapshotResponse: true
        case .appendEntries, .installSnapshot, .timeoutNow: false
        }
    }
}

/// The body of an AppendEntries request.
public struct AppendEntries: Sendable, Equatable {
    public var previousIndex: LogIndex
    public var previousTerm: Term
    public var entries: [Entry]
    /// The leader's commit index (Raft Figure 2, `leaderCommit`).
    public var commit: LogIndex
    /// Increases with every append this leader sends; echoed in the response.
    public var sequence: UInt64

    public init(previousIndex: LogIndex, previousTerm: Term, entries: [Entry], commit: LogIndex, sequence: UInt64) {
        self.previousIndex = previousIndex
        self.previousTerm = previousTerm
        self.entries = entries
        self.commit = commit
        self.sequence = sequence
    }
}

/// The body of an AppendEntries response.
///
/// On success `matchIndex` is the last index known to match the leader's log. On rejection,
/// `rejectedIndex` is the request's `previousIndex`, and `(conflictIndex, conflictTerm)` is the follower's
/// hint for fast backtracking (Raft §5.3, last paragraphs): the largest index at or below the rejected one
/// whose term is at most the request's `previousTerm`, and that term. The leader skips straight to the
/// last index where its own log could agree, instead of retrying one entry at a time.
public struct AppendEntriesResponse: Sendable, Equatable {
    public var success: Bool
    public var matchIndex: LogIndex
    public var rejectedIndex: LogIndex
    public var conflictIndex: LogIndex
    public var conflictTerm: Term
    public var sequence: UInt64

    public init(
        success: Bool, matchIndex: LogIndex, rejectedIndex: LogIndex = 0, conflictIndex: LogIndex = 0,
        conflictTerm: Term = 0, sequence: UInt64
    ) {
        self.success = success
        self.matchIndex = matchIndex
        self.rejectedIndex = rejectedIndex
        self.conflictIndex = conflictIndex
        self.conflictTerm = conflictTerm
        self.sequence = sequence
    }
}

/// One chunk of an InstallSnapshot transfer (Raft §7, with the paper's `offset` and `done`).
///
/// `checksum` is the CRC32C of `data`; the follower verifies it before it keeps the bytes, so a corrupt
/// chunk is asked for again instead of being installed.
public struct SnapshotChunk: Sendable, Equatable {
    public var metadata: SnapshotMetadata
    public var totalBytes: Int
    public var offset: Int
    public var data: [UInt8]
    public var checksum: UInt32
    public var isLast: Bool

    public init(metadata: SnapshotMetadata, totalBytes: Int, offset: Int, data: [UInt8], isLast: Bool) {
        self.metadata = metadata
        self.totalBytes = totalBytes
        self.offset = offset
        self.data = data
        self.checksum = CRC32C.checksum(data)
        self.isLast = isLast
    }

    /// A chunk with the checksum it arrived with, for the decoder. The checksum is kept as sent, not
    /// recomputed, so that a chunk corrupted on the way still fails the follower's check.
    init(metadata: SnapshotMetadata, totalBytes: Int, offset: Int, data: [UInt8], checksum: UInt32, isLast: Bool) {
        self.metadata = metadata
        self.totalBytes = totalBytes
        self.offset = offset
        self.data = data
        self.checksum = checksum
        self.isLast = isLast
    }
}

extension RaftMessage.Kind: CustomStringConvertible {
    public var description: String {
        switch self {
        case .requestVote(let index, let term, let isPreVote, let isTransfer):
            (isPreVote ? "PreVote" : "RequestVote") + " last=\(index)@\(term)" + (isTransfer ? " transfer" : "")
        case .requestVoteResponse(let granted, let isPreVote):
            (isPreVote ? "PreVoteResponse" : "RequestVoteResponse") + (granted ? " granted" : " rejected")
        case .appendEntries(let append):
            (append.entries.isEmpty ? "Heartbeat" : "AppendEntries")
                + " prev=\(append.previousIndex)@\(append.previousTerm) commit=\(append.commit)"
                + (append.entries.isEmpty
                    ? "" : " entries=[" + append.entries.map(\.description).joined(separator: ", ") + "]")
        case .appendEntriesResponse(let response):
            response.success
                ? "AppendEntriesResponse match=\(response.matchIndex)"
                : "AppendEntriesResponse rejected=\(response.rejectedIndex) hint=\(response.conflictIndex)@\(response.conflictTerm)"
        case .installSnapshot(let chunk):
            "InstallSnapshot \(chunk.metadata.index)@\(chunk.metadata.term) offset=\(chunk.offset) bytes=\(chunk.data.count)"
                + (chunk.isLast ? " last" : "")
        case .installSnapshotResponse(let index, let received, let isComplete):
            "InstallSnapshotResponse \(index) received=\(received)" + (isComplete ? " complete" : "")
        case .timeoutNow:
            "TimeoutNow"
        }
    }
}
