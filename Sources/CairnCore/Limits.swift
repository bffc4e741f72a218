/// Every bound in Cairn, in one place, named `…Max`/`…Min` with its unit last.
///
/// Why one place: a limit that lives next to its one user is easy to forget when another part of the
/// system makes an assumption about it. `LimitsTests` checks how these relate to each other.
public enum Limits {
    /// The largest bulk string a client may send (one argument). Redis's `proto-max-bulk-len` is 512 MiB;
    /// Cairn keeps a value inside one storage write and one cache entry, so it takes a smaller bound.
    public static let respBulkBytesMax = 64 * 1024 * 1024
    /// The most arguments one command may carry (Redis: 1024 * 1024).
    public static let respArgumentsMax = 1024 * 1024
    /// The longest inline (non-RESP) command line (Redis: `PROTO_INLINE_MAX_SIZE`, 64 KiB).
    public static let respInlineBytesMax = 64 * 1024
    /// The longest header line (`*N` or `$N`) the parser will look for before calling the input garbage.
    public static let respHeaderBytesMax = 32
    /// The largest string value a command may create by growing one (APPEND, SETRANGE, INCRBYFLOAT).
    public static let valueBytesMax = respBulkBytesMax
    /// Writes a group's leader proposes together as one Raft entry (`NodeCore.flushProposals`), and
    /// their bytes: past either, the batch so far is proposed first. A larger batch saves little more
    /// per write and makes one entry (and one follower append) long. 64 KiB, the default
    /// `RaftConfig.applyBytesMax`: an entry is applied in one step, so a replica catching up applies
    /// at most that much per loop turn (with 256 KiB, a new replica applied 2,200 keys of a bulk load in
    /// one turn, and the learner pacing of `--move-rate` could only send whole 256 KiB entries).
    public static let proposalBatchCommandsMax = 256
    public static let proposalBatchBytesMax = 64 * 1024
    /// The most writes a batch entry read from the log or a peer may hold (a corrupt count must not
    /// make a decoder allocate millions of commands); above what any leader proposes.
    public static let replicatedBatchCommandsMax = 4096
    /// The most clients connected at once; one more is told so and disconnected.
    public static let clientsMax = 10_000
    /// Bytes of replies queued for one client before Cairn stops reading that client's commands.
    public static let clientOutputBytesSoftMax = 1024 * 1024
    /// Bytes of replies queued for one client before Cairn disconnects it (a client that never reads).
    public static let clientOutputBytesHardMax = 256 * 1024 * 1024
    /// Bytes read from one client and not yet parsed (a partial command), beyond one maximal bulk string.
    public static let clientInputBytesMax = respBulkBytesMax + 64 * 1024
    /// Length of a client name set by CLIENT SETNAME or HELLO SETNAME.
    public static let clientNameBytesMax = 256
    /// Keys the background expiry cycle may remove in one tick.
    public static let expiryKeysPerTickMax = 200
    /// Unfinished SCAN cursors remembered at once; older ones are forgotten first.
    public static let scanCursorsMax = 4096
    /// Keys one SCAN call may examine, whatever COUNT asks for.
    public static let scanCountMax = 100_000
    /// Bytes of one HTTP request head on the admin port.
    public static let httpRequestHeadBytesMax = 16 * 1024
    /// Bytes of one HTTP request body (a value `PUT` through the data API, `/v1/kv/KEY`). Larger
    /// values go over RESP (up to `valueBytesMax`).
    public static let httpRequestBodyBytesMax = 8 * 1024 * 1024
    /// Seconds an HTTP connection has to send its whole request (head and body) after it connects;
    /// then it gets 408 and is closed, so a slow or stalled sender cannot hold buffers forever.
    public static let httpRequestSecondsMax = 5
    /// Bytes of one frame's payload on the peer port (DESIGN.md §7; the 16-byte frame header is not
    /// counted). A frame must carry the largest Raft entry with its headers, so it is sized from
    /// `raftEntryBytesMax`; a peer that announces a larger payload is disconnected before any of it is read.
    public static let peerFrameBytesMax = raftEntryBytesMax + 1024 * 1024
    /// Nodes one cluster map may list (removed ones included).
    public static let clusterNodesMax = 1024
    /// Bytes of peer messages the core puts in one envelope before it starts another, well under
    /// `peerFrameBytesMax` so that coalescing never makes a frame too large to send.
    public static let peerEnvelopeBytesTarget = 4 * 1024 * 1024
    /// Commands this node is coordinating (proposed, forwarded or waiting for a leader) at once.
    public static let coordinatedRequestsMax = 100_000
    /// Batches the storage thread may hold before it writes them (group commit merges them).
    public static let storageQueuedBatchesMax = 4096
    /// Connections accepted per listener in one loop turn, so accepts cannot starve reads.
    public static let acceptsPerTurnMax = 64
    /// Bytes read from one socket in one loop turn, so one busy client cannot starve the others.
    public static let readBytesPerTurnMax = 256 * 1024
    /// Search states (a set of placed operations plus a register value) the linearizability checker
    /// may memoize for one key before it calls that key inconclusive rather than search on. A history
    /// without concurrency needs one state per operation; each state costs about operations / 8 bytes.
    public static let linearizabilityStatesPerKeyMax = 250_000
    /// Operations on one key the linearizability checker will search. With the states limit this
    /// bounds the memo to about 250_000 × 512 bytes (128 MiB) for the worst key.
    public static let linearizabilityOperationsPerKeyMax = 4096

    // MARK: Raft

    /// Appends one leader may have in flight to one follower (pipelining window), whatever the config says.
    public static let raftInflightAppendsMax = 256
    /// Bytes of one command proposed to Raft: a whole maximal client value plus room for the command
    /// around it, because a `SET` of the largest value must fit in one entry.
    public static let raftEntryBytesMax = respBulkBytesMax + 1024 * 1024
    /// The largest `appendBytesMax` a Raft config may ask for: bytes of entries in one AppendEntries.
    /// It is a soft target: one entry larger than it is still sent, alone, so every entry can replicate.
    public static let raftAppendBytesMax = 64 * 1024 * 1024
    /// Entries in one AppendEntries message. A leader fills an append up to its `appendBytesMax` (at most
    /// `raftAppendBytesMax`), counting every entry as at least 24 bytes (`Entry.sizeBytes`), so it never
    /// sends more than this; a decoder refuses a count above it before reading the entries.
    public static let raftAppendEntriesMax = raftAppendBytesMax / 24
    /// Bytes of snapshot data in one InstallSnapshot chunk.
    public static let raftSnapshotChunkBytesMax = 4 * 1024 * 1024
    /// Bytes of one whole snapshot a follower will assemble in memory.
    public static let raftSnapshotBytesMax = 1024 * 1024 * 1024
    /// ReadIndex requests one leader queues while it confirms leadership; more are rejected.
    public static let raftPendingReadsMax = 10_000
    /// Ticks in a minimum election timeout, whatever the config says (guards against a unit mistake).
    public static let raftElectionTicksMax = 100_000
    /// Voters plus learners in one group's configuration.
    public static let raftMembersMax = 64
}
