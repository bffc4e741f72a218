import CairnCore
import CairnPlacement

/// When a write counts as durable, and so when its reply may leave (`cairn server --fsync`).
public enum FsyncPolicy: String, Sendable, CaseIterable {
    /// Every batch is fsync'd before any reply that depends on it is sent. The default.
    case always
    /// Batches are written at once and fsync'd about once a second: a crash loses up to a second.
    case everysec
    /// Batches are written and the OS decides when they reach the disk.
    case none

    /// The equivalent Redis `appendfsync` value, for CONFIG GET and INFO.
    public var redisName: String {
        switch self {
        case .always: "always"
        case .everysec: "everysec"
        case .none: "no"
        }
    }
}

/// What a node core needs to know about its settings. The shell builds it from flags.
public struct NodeConfig: Sendable {
    public var fsync: FsyncPolicy = .always
    public var cacheBytes = 64 * 1024 * 1024
    /// Seed of the core's random choices (RANDOMKEY); the shell logs it.
    public var seed: UInt64 = 1
    /// Wall-clock length of a tick, for INFO and for turning ticks into seconds.
    public var tickMilliseconds = 10
    /// Ticks between background expiry cycles (Redis runs its cycle at `hz` 10: every 100 ms).
    public var expiryCycleTicks = 10
    /// Reported by INFO and CONFIG GET; the core does not open anything itself.
    public var bindAddress = "127.0.0.1"
    public var clientPort = 7379
    public var peerPort = 17379
    public var httpPort = 27379
    public var dataDirectory = "./cairn-data"
    public var processID = 0
    public var runID = "0000000000000000000000000000000000000000"
    public var executablePath = "cairn"
    public var operatingSystem = "Linux"

    // Cluster.
    /// Where this node listens, as the cluster map records it for other nodes and clients.
    public var addresses = NodeAddresses(client: "127.0.0.1:7379", peer: "127.0.0.1:17379", http: "127.0.0.1:27379")
    /// Peer addresses of nodes to ask for admission when the data directory is empty. Empty: found a
    /// new cluster with this node as node 1.
    public var join: [String] = []
    /// Partitions of a cluster this node founds (`PartitionTable.countDefault`; see docs/placement.md).
    public var partitionCount = PartitionTable.countDefault
    /// Replicas of each partition in a cluster this node founds (fewer while there are fewer nodes).
    public var replicas = 3
    /// Raft timing in ticks (DESIGN.md §8): elections after a random 10–20 ticks, heartbeats every 2.
    public var electionTicks = 10
    public var heartbeatTicks = 2
    /// How long a coordinator waits for a command's outcome before answering TRYAGAIN/CLUSTERDOWN.
    public var requestTimeoutMilliseconds: Int64 = 5000
    /// A group snapshots its state and deletes its log once this many applied entries follow its last
    /// snapshot (etcd's `--snapshot-count` is 10,000 too), an entry that batches writes counting as
    /// each of them; 0 never compacts. Checked every 100 ms.
    public var snapshotEntries = 10_000
    /// Raft log entries (held in memory) the node aims to keep over all the groups it hosts: a group
    /// snapshots after the smaller of `snapshotEntries` and its share of this (at least 1,000). With 128 partitions a node
    /// keeps about 2,048 entries per group instead of 10,000: under heavy writes its memory levels off
    /// at tens of MB of log instead of hundreds.
    public var logEntriesPerNodeMax = 262_144
    /// Ticks without hearing from a node after which the meta leader marks it dead and rebuilds its
    /// replicas elsewhere (`--dead-node-timeout`, default 60 s); 0 never marks a node dead.
    public var deadNodeTicks = 6000
    /// A leader starts a partition move only while fewer than this many partitions this node holds a
    /// copy of are changing replicas (`--max-moves`): the rest wait their turn, so a join or
    /// decommission does not start every transfer at once. One by default: on the 2-core benchmark
    /// machine 4 finished a join 3.7 times sooner but tripled client p99 while it ran (docs/bench.md).
    public var maxMoves = 1
    /// Client commands this node holds without a reply yet, over all connections (`--max-inflight`):
    /// past it, a new command that must wait (a routed one) is refused at once with `-TRYAGAIN`.
    public var maxCommandsInFlight = 50_000
    /// Commands per second that all connections from one client address may send together
    /// (`--client-rate-limit`; a burst of one second's worth); past it, a command that must wait for
    /// the cluster is refused at once with `-TRYAGAIN`. 0, the default, limits nothing.
    public var clientCommandsPerSecond = 0
    /// Admission by queueing delay (`--overload-latency`, see `LatencyAdmission`): while even the
    /// fastest routed read (or write) of the last 100 ms took longer than this, new ones are admitted
    /// only at the rate they complete, scaled down by how far over; the rest get `-TRYAGAIN` at once.
    /// 0 turns it off.
    public var overloadLatencyMilliseconds = 250
    /// How long an idempotency token is remembered (`IDEMPOTENT token command ...`), by apply time.
    public var idempotencyWindowMilliseconds: Int64 = 600_000
    /// Catch-up bytes this node sends per second (`--move-rate`); 0 is unlimited. Snapshot chunks
    /// (partition moves and lagging followers), over all peers: a token bucket refilled every tick.
    /// Separately, the log backlog a leader here sends each new replica: an equal part for each of
    /// `maxMoves` moves (`RaftConfig.learnerBytesPerTick`). 4 MiB/s by default: in the rebalance
    /// benchmark (2 cores) it gave the lowest client p99 during a join of the rates tried (4, 8, 16
    /// and 64 MiB/s), at no cost in time (docs/bench.md).
    public var moveBytesPerSecond = 4 * 1024 * 1024
    /// A deliberately wrong behaviour, for simulation only (see `_NodeInjectedBug`). Nil in production.
    public var _injectedBug: _NodeInjectedBug?

    public init() {}
}

/// A deliberately wrong behaviour of a whole node that proves the cluster simulator's checks can fail
/// (`cairn sim cluster --inject-bug NAME`), as `_RaftInjectedBug` does for one Raft group. Each one breaks
/// a promise Cairn makes to clients, so it is never set outside tests and simulation.
public enum _NodeInjectedBug: String, Sendable, Equatable, CaseIterable {
    /// A replica that is not the leader answers a default (linearizable) read from its own copy, without
    /// forwarding it to the leader: a lagging or partitioned follower returns stale values.
    case followerServesLinearizableRead = "follower-serves-linearizable-read"
    /// `IDEMPOTENT token command ...` runs the command every time, as if no token were recorded: a
    /// retried write applies again.
    case idempotencyIgnored = "idempotency-ignored"
    /// A leader sends a follower that needs a snapshot an empty partition (its index, term and
    /// configuration right, its records left out): the follower's copy silently loses keys.
    case snapshotWithoutData = "snapshot-without-data"
}

/// Version strings Cairn reports.
public enum CairnVersion {
    public static let cairn = "0.1.0"
    /// The Redis version whose commands and replies Cairn follows; clients use it to pick features.
    public static let redisCompatible = "7.4.0"
}
