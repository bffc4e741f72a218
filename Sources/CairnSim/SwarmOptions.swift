import CairnCore
import CairnRaft

/// The settings of one simulation run, all drawn from its seed ("swarm testing", TigerBeetle's VOPR):
/// each seed explores a different corner (slow disks, lossy links, frequent crashes, no PreVote, …)
/// instead of every run using the same middling settings. The trace logs them under `SEED=`.
///
/// Probabilities are in per mille (0...1000) so that they draw and print exactly. Times are simulated
/// milliseconds; one Raft tick is `tickMs` (10 ms).
public struct SwarmOptions: Sendable, Equatable, CustomStringConvertible {
    /// Simulated milliseconds per Raft tick.
    public static let tickMs: UInt64 = 10

    public var seed: UInt64
    public var nodeCount: Int

    // Raft settings.
    public var electionTicksMin: Int
    public var heartbeatTicks: Int
    public var preVote: Bool
    public var checkQuorum: Bool
    public var leaseReads: Bool
    public var inflightAppendsMax: Int
    public var appendBytesMax: Int
    public var snapshotChunkBytesMax: Int
    /// The application snapshots after applying this many entries since its last snapshot.
    public var snapshotEntriesMin: Int

    // Network.
    public var messageDelayMsMin: UInt64
    public var messageDelayMsMax: UInt64
    public var dropPermille: Int
    public var duplicatePermille: Int
    /// A reordered message is held back by up to `reorderDelayMsMax` extra, so later ones overtake it.
    public var reorderPermille: Int
    public var reorderDelayMsMax: UInt64
    /// Mean time between partitions; nil means no partitions in this run.
    public var partitionIntervalMsMean: UInt64?
    public var partitionDurationMsMax: UInt64
    /// Of the partitions, how many are one-way (a node hears but is not heard, or the reverse).
    public var asymmetricPermille: Int
    /// Of the partitions, how many clog links one at a time and heal them one at a time in random
    /// order (FoundationDB's swizzle-clog), instead of all at once.
    public var swizzlePermille: Int

    // Disk.
    /// Each write batch becomes durable 0...`diskLatencyMsMax` after it is issued, in issue order.
    public var diskLatencyMsMax: UInt64

    // Crashes.
    /// Mean time between crashes; nil means no crashes in this run.
    public var crashIntervalMsMean: UInt64?
    public var downtimeMsMax: UInt64
    /// Of the crashes, how many take down every node at once (a power failure): only then can writes
    /// that were acknowledged but not fsync'd vanish from every copy.
    public var powerFailurePermille: Int
    /// How often a partition or a crash picks the leader (Jepsen's favourite target) rather than any node.
    public var leaderTargetPermille: Int
    /// A fault site in the manner of FoundationDB's BUGGIFY, on in one run of two: a node that just
    /// granted a vote (or won an election) crashes at once and reboots within `rebootMsMax`, with this
    /// probability per vote.
    public var crashAfterVotePermille: Int
    public var rebootMsMax: UInt64

    // Clients.
    public var clientCount: Int
    public var keyCount: Int
    public var readPermille: Int
    public var compareAndSetPermille: Int
    public var deletePermille: Int
    public var thinkMsMin: UInt64
    public var thinkMsMax: UInt64
    public var requestTimeoutMs: UInt64
    /// After a timeout, how often a client tries the same node again (it cannot tell a slow node from a
    /// partitioned one) instead of another.
    public var retrySameNodePermille: Int

    /// Draws every option from `seed`.
    /// - Precondition: `nodeCount` is 3 or 5.
    public init(seed: UInt64, nodeCount: Int) {
        precondition(nodeCount == 3 || nodeCount == 5, "nodeCount must be 3 or 5, got \(nodeCount)")
        var prng = SplitMix64(seed: seed ^ 0x5357_4152_4D00_0000)  // "SWARM": a stream of its own.
        self.seed = seed
        self.nodeCount = nodeCount
        electionTicksMin = prng.within(10...25)
        heartbeatTicks = prng.within(1...max(1, electionTicksMin / 6))
        preVote = prng.chance(750)
        checkQuorum = prng.chance(650)
        leaseReads = checkQuorum && prng.chance(250)
        inflightAppendsMax = prng.within(1...8)
        appendBytesMax = prng.within(64...4096)
        snapshotChunkBytesMax = prng.within(16...512)
        snapshotEntriesMin = prng.within(10...200)

        messageDelayMsMin = UInt64(prng.within(0...3))
        messageDelayMsMax = messageDelayMsMin + UInt64(prng.within(1...30))
        dropPermille = prng.chance(200) ? 0 : prng.within(0...100)
        duplicatePermille = prng.chance(300) ? 0 : prng.within(0...50)
        reorderPermille = prng.chance(300) ? 0 : prng.within(0...100)
        reorderDelayMsMax = UInt64(prng.within(10...100))
        partitionIntervalMsMean = prng.chance(150) ? nil : UInt64(prng.within(300...4000))
        partitionDurationMsMax = UInt64(prng.within(100...4000))
        asymmetricPermille = prng.within(0...500)
        swizzlePermille = prng.within(0...500)

        diskLatencyMsMax = prng.chance(200) ? 0 : UInt64(prng.within(1...40))

        crashIntervalMsMean = prng.chance(150) ? nil : UInt64(prng.within(300...5000))
        downtimeMsMax = UInt64(prng.within(20...2000))
        powerFailurePermille = prng.chance(500) ? 0 : prng.within(0...500)
        leaderTargetPermille = prng.within(0...800)
        crashAfterVotePermille = prng.chance(500) ? prng.within(200...1000) : 0
        rebootMsMax = UInt64(prng.within(0...10))

        clientCount = prng.within(2...6)
        keyCount = prng.within(2...6)
        readPermille = prng.within(200...900)
        compareAndSetPermille = (1000 - readPermille) * prng.within(20...50) / 100
        deletePermille = (1000 - readPermille) * prng.within(0...15) / 100
        thinkMsMin = 0
        thinkMsMax = UInt64(prng.within(0...40))
        requestTimeoutMs = UInt64(prng.within(20...100)) * Self.tickMs
        retrySameNodePermille = prng.within(0...800)
    }

    /// A fault-free group with zero network and disk latency and a write-only workload from many
    /// clients: a measure of the core's own cost per committed proposal (`cairn sim raft --bench`).
    public static func calm(seed: UInt64, nodeCount: Int, clientCount: Int = 64) -> SwarmOptions {
        var options = SwarmOptions(seed: seed, nodeCount: nodeCount)
        options.electionTicksMin = 10
        options.heartbeatTicks = 1
        options.preVote = true
        options.checkQuorum = true
        options.leaseReads = false
        options.inflightAppendsMax = 4
        options.appendBytesMax = 1024 * 1024
        options.snapshotEntriesMin = 10_000
        options.messageDelayMsMin = 0
        options.messageDelayMsMax = 0
        options.dropPermille = 0
        options.duplicatePermille = 0
        options.reorderPermille = 0
        options.partitionIntervalMsMean = nil
        options.diskLatencyMsMax = 0
        options.crashIntervalMsMean = nil
        options.powerFailurePermille = 0
        options.crashAfterVotePermille = 0
        options.clientCount = clientCount
        options.keyCount = clientCount
        options.readPermille = 0
        options.compareAndSetPermille = 0
        options.deletePermille = 0
        // One millisecond between a reply and the next request, so simulated time moves on.
        options.thinkMsMin = 1
        options.thinkMsMax = 1
        return options
    }

    /// The core settings for node `id` in its `incarnation` (each restart draws new election timeouts).
    func raftConfig(id: NodeID, incarnation: Int, bug: InjectedBug) -> RaftConfig {
        var config = RaftConfig(
            id: id, electionTicksMin: electionTicksMin, heartbeatTicks: heartbeatTicks,
            seed: seed &* 0x9E37_79B9_7F4A_7C15 &+ id.rawValue &* 1_000_003 &+ UInt64(incarnation),
            preVote: preVote, checkQuorum: checkQuorum, leaseReads: leaseReads,
            inflightAppendsMax: inflightAppendsMax, appendBytesMax: appendBytesMax,
            snapshotChunkBytesMax: snapshotChunkBytesMax)
        config._injectedBug = bug.coreBug
        return config
    }

    public var description: String {
        let partitions = partitionIntervalMsMean.map { "every~\($0)ms up-to \(partitionDurationMsMax)ms" } ?? "none"
        let crashes =
            (crashIntervalMsMean.map { "every~\($0)ms down-up-to \(downtimeMsMax)ms" } ?? "none")
            + " power-failures=\(powerFailurePermille)‰ leader-targeted=\(leaderTargetPermille)‰"
            + " crash-after-vote=\(crashAfterVotePermille)‰ reboot-up-to=\(rebootMsMax)ms"
        return [
            "nodes=\(nodeCount)",
            "raft: election=\(electionTicksMin)t heartbeat=\(heartbeatTicks)t prevote=\(preVote)"
                + " checkquorum=\(checkQuorum) lease=\(leaseReads) inflight=\(inflightAppendsMax)"
                + " append-bytes=\(appendBytesMax) chunk-bytes=\(snapshotChunkBytesMax)"
                + " snapshot-every=\(snapshotEntriesMin)",
            "network: delay=\(messageDelayMsMin)..\(messageDelayMsMax)ms drop=\(dropPermille)‰"
                + " duplicate=\(duplicatePermille)‰ reorder=\(reorderPermille)‰/\(reorderDelayMsMax)ms"
                + " partitions=\(partitions) asymmetric=\(asymmetricPermille)‰ swizzle=\(swizzlePermille)‰",
            "disk: latency=0..\(diskLatencyMsMax)ms crashes=\(crashes)",
            "clients=\(clientCount) keys=\(keyCount) read=\(readPermille)‰ cas=\(compareAndSetPermille)‰"
                + " delete=\(deletePermille)‰ think=\(thinkMsMin)..\(thinkMsMax)ms timeout=\(requestTimeoutMs)ms"
                + " retry-same-node=\(retrySameNodePermille)‰",
        ].joined(separator: "\n  ")
    }
}

extension SplitMix64 {
    /// A uniformly chosen integer in `range`.
    mutating func within(_ range: ClosedRange<Int>) -> Int {
        range.lowerBound + below(range.count)
    }

    /// A uniformly chosen integer in `range`.
    mutating func within(_ range: ClosedRange<UInt64>) -> UInt64 {
        range.lowerBound + next() % (range.upperBound - range.lowerBound + 1)
    }

    /// True with probability `permille` / 1000.
    mutating func chance(_ permille: Int) -> Bool {
        permille > 0 && below(1000) < permille
    }
}
