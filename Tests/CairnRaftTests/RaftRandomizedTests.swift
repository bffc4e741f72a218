import CairnCore
import Testing

@testable import CairnRaft

/// Goal: show that Raft's safety properties (Figure 3) hold under faults, for many seeds.
///
/// Method: each seed builds a cluster (5 voters, 3 voters, or 3 voters plus 2 spare nodes for membership changes)
/// and runs rounds of: a random fault or request (partition, heal, crash, restart, proposals, reads,
/// snapshots, membership changes, transfers), a tick on every node, and one hop of message delivery with
/// random loss, duplication and reordering. `RaftCluster` checks Election Safety, Log Matching, Leader
/// Completeness and State Machine Safety after every step, and that no read (ReadIndex, or a lease for
/// one seed in four) is served below an index committed before it was asked. Then a liveness phase heals everything and
/// requires a leader whose members all apply the same commands. Every failure message names its seed.
@Suite("Raft randomized safety")
struct RaftRandomizedTests {
    static let roundsMax = 80

    @Test("Figure 3: safety holds and the group recovers under random faults", arguments: 0..<200 as Range<UInt64>)
    func randomFaults(seed: UInt64) {
        var cluster = Self.runFaults(seed: seed)
        #expect(cluster.violations.isEmpty, "seed \(seed): \(cluster.violations)")
        Self.checkLiveness(&cluster, seed: seed)
    }

    @Test("the seeds with snapshots on demand ask for snapshots, and followers restore them")
    func onDemandSnapshotsExercised() {
        var requests = 0
        var restores = 0
        for seed in (0..<200 as Range<UInt64>) where seed % 8 >= 4 {
            var cluster = Self.runFaults(seed: seed)
            Self.checkLiveness(&cluster, seed: seed)
            requests += cluster.snapshotRequests.values.reduce(0, +)
            restores += cluster.restores
        }
        #expect(requests > 0)
        #expect(restores > 0)
    }

    @Test(
        "the checks can fail: each injected bug is caught for some seed",
        arguments: [
            (_RaftInjectedBug.voteTwice, "Election Safety"),
            (.commitWithoutQuorum, "Safety"),
            (.readWithoutReadIndex, "Stale read"),
        ])
    func injectedBugIsCaught(bug: _RaftInjectedBug, violation: String) {
        var caughtBy: UInt64?
        // Stale leaders linger only without CheckQuorum (seeds 1 mod 4), so a stale read needs one of those.
        let seeds: [UInt64] =
            bug == .readWithoutReadIndex ? Array(stride(from: 1, to: 1600, by: 4)) : Array(0..<400)
        for seed in seeds {
            let cluster = Self.runFaults(seed: seed, bug: bug)
            if cluster.violations.contains(where: { $0.contains(violation) }) {
                caughtBy = seed
                break
            }
        }
        #expect(caughtBy != nil, "\(bug.rawValue) was never caught")
    }

    /// Builds a cluster for `seed` and runs the fault phase; the violations found are in the result.
    static func runFaults(seed: UInt64, bug: _RaftInjectedBug? = nil) -> RaftCluster {
        var prng = SplitMix64(seed: seed)
        let size = prng.below(3) == 0 ? 5 : 3
        let withSpares = size == 3 && prng.below(2) == 1
        var cluster = RaftCluster(size: size) { config in
            config.seed ^= seed
            config.inflightAppendsMax = 2
            config.appendBytesMax = 64
            config.snapshotChunkBytesMax = 16
            // Vary the features by seed: defaults; no CheckQuorum or PreVote (stale leaders linger);
            // lease reads; no PreVote.
            config.checkQuorum = seed % 4 != 1
            config.preVote = seed % 4 == 0 || seed % 4 == 2
            config.leaseReads = seed % 4 == 2
            // Half the seeds keep the state machine durable and prepare snapshots only to send them.
            config.snapshotsOnDemand = seed % 8 >= 4
            config._injectedBug = bug
        }
        cluster.isRendering = false
        if withSpares {
            cluster.addNode(4)
            cluster.addNode(5)
        }
        var request: UInt64 = 0
        for _ in 0..<Self.roundsMax {
            Self.randomEvent(&cluster, &prng, &request)
            cluster.tickAll()
            Self.deliverOneHop(&cluster, &prng, lossPercent: 10)
            // The application answers a request for a snapshot to send a round or more later.
            if prng.below(2) == 0 { cluster.prepareSnapshots() }
            if !cluster.violations.isEmpty { break }
        }
        return cluster
    }

    /// One random fault or client request, or nothing.
    static func randomEvent(_ cluster: inout RaftCluster, _ prng: inout SplitMix64, _ request: inout UInt64) {
        let nodes = cluster.nodes
        let node = nodes[prng.below(nodes.count)]
        // Requests go to any node that believes it leads, stale leaders included, as clients' would.
        let leaders = nodes.filter { cluster.cores[$0]?.role == .leader }
        let target = leaders.isEmpty ? node : leaders[prng.below(leaders.count)]
        request += 1
        let id = RequestID(rawValue: request)
        switch prng.below(100) {
        case 0..<4:
            let cut = nodes.filter { _ in prng.below(2) == 0 }
            cluster.partition([cut, nodes.filter { !cut.contains($0) }])
        case 4..<10: cluster.heal()
        case 10..<13: if cluster.crashed.count < 2 { cluster.crash(node) }
        case 13..<20: if let down = cluster.crashed.sorted().first { cluster.restart(down) }
        case 20..<42: cluster.step(target, .propose(Array("c\(request)".utf8), request: id))
        case 42..<50: cluster.step(target, .readIndex(request: id))
        case 50..<53: cluster.snapshot(node)
        case 53..<55: cluster.step(target, .transferLeadership(to: node, request: id))
        case 55..<60: cluster.step(target, .changeMembership(randomChange(nodes, &prng), request: id))
        default: break
        }
    }

    static func randomChange(_ nodes: [NodeID], _ prng: inout SplitMix64) -> MembershipChange {
        let node = nodes[prng.below(nodes.count)]
        switch prng.below(4) {
        case 0: return .addLearner(node)
        case 1: return .promoteLearner(node)
        case 2: return .remove(node)
        default:
            let voters = nodes.filter { _ in prng.below(2) == 0 }
            return .replaceVoters(voters.isEmpty ? [node] : voters)
        }
    }

    /// Delivers the messages queued now, each lost, duplicated or moved with some probability.
    static func deliverOneHop(_ cluster: inout RaftCluster, _ prng: inout SplitMix64, lossPercent: Int) {
        var batch = cluster.network
        cluster.network = []
        for index in batch.indices where prng.below(10) == 0 {
            batch.swapAt(index, prng.below(batch.count))
        }
        for envelope in batch {
            let roll = prng.below(100)
            if roll < lossPercent { continue }
            cluster.deliver(envelope)
            if roll >= 97 { cluster.deliver(envelope) }
        }
    }

    /// Heals and restarts everything; a leader must emerge and its members must converge.
    static func checkLiveness(_ cluster: inout RaftCluster, seed: UInt64) {
        cluster.heal()
        for node in cluster.crashed.sorted() { cluster.restart(node) }
        var rounds = 0
        while rounds < 400 {
            cluster.tickAll()
            cluster.deliverAll()
            cluster.prepareSnapshots()
            rounds += 1
            if rounds % 20 == 0, isConverged(cluster) { break }
        }
        #expect(cluster.violations.isEmpty, "seed \(seed): \(cluster.violations)")
        let isConverged = isConverged(cluster)
        #expect(isConverged, "seed \(seed): no convergence after \(rounds) rounds")
    }

    static func isConverged(_ cluster: RaftCluster) -> Bool {
        guard let leader = cluster.leader, let core = cluster.cores[leader] else { return false }
        return core.configuration.members.allSatisfy { member in
            cluster.appliedIndex[member] == cluster.appliedIndex[leader]
                && cluster.machines[member] == cluster.machines[leader]
        }
    }
}
