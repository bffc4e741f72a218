import CairnCore

/// The settings of one whole-cluster run (`ClusterSimulation`), all drawn from its seed, as
/// `SwarmOptions` are for one Raft group: each seed explores a different corner (a lossy network, slow
/// disks, frequent crashes, many clients on few keys, …). The trace logs them under `SEED=`.
///
/// Probabilities are in per mille (0...1000); times are simulated milliseconds; one node tick is
/// `SwarmOptions.tickMs` (10 ms), as in the server.
public struct ClusterOptions: Sendable, Equatable, CustomStringConvertible {
    public var seed: UInt64
    public var nodeCount: Int
    /// Partitions of the cluster the first node founds: few, so that a run stays fast, but more than
    /// the nodes, so that leaders spread and most commands are forwarded.
    public var partitionCount: Int

    // Network. Peer links are TCP connections: in order per link, never duplicated.
    public var messageDelayMsMin: UInt64
    public var messageDelayMsMax: UInt64
    /// An envelope lost in transit: its connection broke and the next envelope goes on a new one.
    public var dropPermille: Int
    /// Mean time between partitions; nil means no partitions in this run.
    public var partitionIntervalMsMean: UInt64?
    public var partitionDurationMsMax: UInt64
    /// Of the partitions, how many are one-way (a node hears but is not heard, or the reverse).
    public var asymmetricPermille: Int

    // Disk.
    /// Each storage batch becomes durable 0...`diskLatencyMsMax` after it is issued, in issue order.
    public var diskLatencyMsMax: UInt64

    // Crashes.
    /// Mean time between crashes; nil means no crashes in this run.
    public var crashIntervalMsMean: UInt64?
    public var downtimeMsMax: UInt64
    /// Of the crashes, how many take every node down at once (a power failure).
    public var powerFailurePermille: Int

    // Clients.
    public var clientCount: Int
    public var keyCount: Int
    public var readPermille: Int
    /// `SET key value IFEQ old`, or `SET key value NX` when the client last saw the key absent.
    public var compareAndSetPermille: Int
    public var deletePermille: Int
    public var thinkMsMax: UInt64
    /// How long a client waits for a reply before it gives up (outcome unknown) and reconnects.
    public var clientTimeoutMs: UInt64
    /// How long a node waits for a command's outcome before it answers TRYAGAIN or CLUSTERDOWN
    /// (`NodeConfig.requestTimeoutMilliseconds`).
    public var nodeRequestTimeoutMs: Int64

    // Nodes.
    /// A group snapshots and compacts its log after this many applied entries
    /// (`NodeConfig.snapshotEntries`); small, so that lagging and restarted replicas install snapshots.
    public var snapshotEntries: Int

    // Membership: with 5 nodes, half the runs decommission one (by position) this far into the fault
    // phase (‰); once faults stop it must end removed, every partition on the other nodes.
    public var decommissionPosition: Int?
    public var decommissionAtPermille: Int
    /// `NodeConfig.moveBytesPerSecond`: in half the runs 8 to 64 KiB/s (80 to 650 bytes a tick), so a new
    /// replica catches up from the log over many ticks (`RaftConfig.learnerBytesPerTick`) and snapshot
    /// chunks wait for the rate; 0 (no limit) in the others.
    public var moveBytesPerSecond: Int

    // Idempotency: this share of writes carries a token (`IDEMPOTENT token ...`), and the client retries
    // one whose outcome it did not learn (error, timeout, crash) with the same token, up to
    // `idempotentAttemptsMax` attempts, as one operation of the history.
    public var idempotentPermille: Int
    public static let idempotentAttemptsMax = 6

    /// Draws every option from `seed`.
    /// - Precondition: `nodeCount` is 3 or 5.
    public init(seed: UInt64, nodeCount: Int) {
        precondition(nodeCount == 3 || nodeCount == 5, "nodeCount must be 3 or 5, got \(nodeCount)")
        var prng = SplitMix64(seed: seed ^ 0x434C_5553_5445_5200)  // "CLUSTER": a stream of its own.
        self.seed = seed
        self.nodeCount = nodeCount
        partitionCount = 8

        messageDelayMsMin = UInt64(prng.within(0...3))
        messageDelayMsMax = messageDelayMsMin + UInt64(prng.within(1...20))
        dropPermille = prng.chance(300) ? 0 : prng.within(1...30)
        partitionIntervalMsMean = prng.chance(150) ? nil : UInt64(prng.within(500...4000))
        partitionDurationMsMax = UInt64(prng.within(100...3000))
        asymmetricPermille = prng.within(0...400)

        diskLatencyMsMax = prng.chance(200) ? 0 : UInt64(prng.within(1...30))

        crashIntervalMsMean = prng.chance(150) ? nil : UInt64(prng.within(500...5000))
        downtimeMsMax = UInt64(prng.within(50...2000))
        powerFailurePermille = prng.chance(500) ? 0 : prng.within(0...300)

        clientCount = prng.within(2...6)
        keyCount = prng.within(2...6)
        readPermille = prng.within(200...700)
        compareAndSetPermille = (1000 - readPermille) * prng.within(20...50) / 100
        deletePermille = (1000 - readPermille) * prng.within(0...15) / 100
        thinkMsMax = UInt64(prng.within(0...40))
        nodeRequestTimeoutMs = Int64(prng.within(50...200)) * Int64(SwarmOptions.tickMs)
        // Clients wait past the node's deadline and its watchdog's second of grace, so a command the
        // node never answers shows up (as the watchdog's warning) instead of hiding behind a timeout.
        clientTimeoutMs = UInt64(nodeRequestTimeoutMs) + UInt64(prng.within(150...250)) * SwarmOptions.tickMs
        snapshotEntries = prng.within(10...300)
        // A stream of its own, so that adding it changed no earlier draw (old seeds replay as before).
        var membership = SplitMix64(seed: seed ^ 0x4D45_4D42_4552_5300)  // "MEMBERS"
        decommissionPosition = nodeCount == 5 && membership.chance(500) ? membership.below(nodeCount) : nil
        decommissionAtPermille = membership.within(50...700)
        idempotentPermille = membership.chance(500) ? membership.within(300...1000) : 0
        moveBytesPerSecond = membership.chance(500) ? membership.within(8...64) * 1024 : 0
    }

    public var description: String {
        let partitions =
            partitionIntervalMsMean.map { "every~\($0)ms up-to \(partitionDurationMsMax)ms" } ?? "none"
        let crashes =
            (crashIntervalMsMean.map { "every~\($0)ms down-up-to \(downtimeMsMax)ms" } ?? "none")
            + " power-failures=\(powerFailurePermille)‰"
        return [
            "nodes=\(nodeCount) partitions=\(partitionCount) snapshot-every=\(snapshotEntries)",
            "network: delay=\(messageDelayMsMin)..\(messageDelayMsMax)ms drop=\(dropPermille)‰"
                + " partitions=\(partitions) asymmetric=\(asymmetricPermille)‰",
            "disk: latency=0..\(diskLatencyMsMax)ms crashes=\(crashes)",
            "idempotent writes: \(idempotentPermille)‰ (retried with their token)",
            "membership: "
                + (decommissionPosition.map {
                    "decommission n\($0 + 1) at \(decommissionAtPermille)‰ of the fault phase"
                }
                    ?? "no changes")
                + " move-rate=\(moveBytesPerSecond == 0 ? "unlimited" : "\(moveBytesPerSecond / 1024)KiB/s")",
            "clients=\(clientCount) keys=\(keyCount) read=\(readPermille)‰ cas=\(compareAndSetPermille)‰"
                + " delete=\(deletePermille)‰ think=0..\(thinkMsMax)ms client-timeout=\(clientTimeoutMs)ms"
                + " node-timeout=\(nodeRequestTimeoutMs)ms",
        ].joined(separator: "\n  ")
    }
}

/// A deliberately wrong behaviour for a whole-cluster run (`cairn sim cluster --inject-bug NAME`), to
/// prove that the cluster simulator's checks can fail.
public enum ClusterBug: String, Sendable, Equatable, CaseIterable, CustomStringConvertible {
    case none
    /// A replica that does not lead its partition answers a default GET from its own copy (in the node,
    /// `NodeConfig._injectedBug`).
    case followerServesLinearizableRead = "follower-serves-linearizable-read"
    /// The simulated shell reports each storage batch durable as soon as it is handed over, before its
    /// fsync; a crash then loses writes the node acknowledged.
    case ackBeforeFsync = "ack-before-fsync"
    /// The simulated shell writes every batch without an fsync, as it may only a batch of applied data
    /// (`StorageBatch.needsSync` false): a crash then loses Raft entries and votes the node reported
    /// durable.
    case logWithoutFsync = "log-without-fsync"
    /// Nodes ignore idempotency tokens (`NodeConfig._injectedBug`): a client's retry of a write whose
    /// outcome it did not learn applies it a second time.
    case idempotencyIgnored = "idempotency-ignored"
    /// A leader sends a follower that needs a snapshot an empty partition (`NodeConfig._injectedBug`):
    /// the follower's copy loses keys, which reads show once it serves them (as leader after a crash).
    case snapshotWithoutData = "snapshot-without-data"

    /// The bugs a run can inject, without `none`.
    public static var injectable: [ClusterBug] { allCases.filter { $0 != .none } }

    public var description: String { rawValue }
}
