import CairnCore
import Testing

@testable import CairnPlacement

/// How much `Placement.assign` moves when membership changes, measured against the optimum.
///
/// The bounds stated and checked here (docs/placement.md quotes the measured values):
/// - recomputing with the same nodes returns the previous assignment exactly: no move, no new leader;
/// - a join moves at most 1.05 × optimum + 2 replicas, where optimum = partitions × replicas / (n + 1)
///   is the joining node's fair share, and every move lands on the joining node;
/// - a removal moves at most the departed node's replicas + 2 (measured: + 0);
/// - a join changes at most `lost + joined + ⌈P/n⌉ + 2` preferred leaders, where `lost` counts partitions
///   whose leader's replica moved away and `joined` the leaderships the new node takes.
@Suite("placement movement")
struct PlacementMovementTests {
    @Test("recomputing with the same inputs moves nothing and changes no leader", arguments: 0..<100 as Range<UInt64>)
    func recomputeIsStable(seed: UInt64) {
        var prng = SplitMix64(seed: seed)
        let nodes = PlacementScenario.nodes(prng.below(12) + 1, using: &prng)
        let partitions = [64, 128, prng.below(200)][prng.below(3)]
        let replicas = prng.below(4) + 1
        let first = Placement.assign(nodes: nodes, partitions: partitions, replicas: replicas)
        let again = Placement.assign(nodes: nodes, partitions: partitions, replicas: replicas, previous: first)
        #expect(again == first, "seed \(seed)")
        #expect(Placement.movements(from: first, to: again).isEmpty, "seed \(seed)")
    }

    @Test("adding a node moves about its fair share, all onto it", arguments: 0..<120 as Range<UInt64>)
    func joinMovesFairShare(seed: UInt64) {
        var prng = SplitMix64(seed: seed)
        let nodes = PlacementScenario.nodes(3 + Int(seed % 10), using: &prng)
        let partitions = seed % 2 == 0 ? 64 : 128
        let before = Placement.assign(nodes: nodes, partitions: partitions, replicas: 3)
        let joiner = PlacementScenario.newNode(besides: nodes, using: &prng)
        let after = Placement.assign(nodes: nodes + [joiner], partitions: partitions, replicas: 3, previous: before)

        let optimum = Double(partitions * 3) / Double(nodes.count + 1)
        let moves = Placement.movements(from: before, to: after)
        #expect(Double(moves.count) <= 1.05 * optimum + 2, "seed \(seed): \(moves.count) moves, optimum \(optimum)")
        #expect(Double(moves.count) >= optimum - 1, "seed \(seed): the new node gets its share")
        #expect(moves.allSatisfy { $0.target == joiner && $0.source != nil }, "seed \(seed): a move missed the joiner")

        let lost = PlacementScenario.leadersLost(from: before, to: after)
        let joined = after.filter { $0.first == joiner }.count
        let cap = Placement.leadersPerNodeMax(nodes: nodes.count, partitions: partitions)
        let changes = PlacementScenario.leaderChanges(from: before, to: after)
        #expect(changes <= lost + joined + cap + 2, "seed \(seed): \(changes) leader changes, \(lost) + \(joined)")
        let leadersCap = Placement.leadersPerNodeMax(nodes: nodes.count + 1, partitions: partitions)
        #expect(Placement.Balance(of: after, nodes: nodes + [joiner]).leadersPerNodeMax <= leadersCap, "seed \(seed)")
    }

    @Test("removing a node moves only its replicas", arguments: 0..<120 as Range<UInt64>)
    func removalMovesOnlyItsReplicas(seed: UInt64) {
        var prng = SplitMix64(seed: seed)
        let nodes = PlacementScenario.nodes(4 + Int(seed % 10), using: &prng)
        let partitions = seed % 2 == 0 ? 64 : 128
        let before = Placement.assign(nodes: nodes, partitions: partitions, replicas: 3)
        let leaver = nodes[prng.below(nodes.count)]
        let remaining = nodes.filter { $0 != leaver }
        let after = Placement.assign(nodes: remaining, partitions: partitions, replicas: 3, previous: before)

        let leaverLoad = PlacementScenario.load(of: leaver, in: before)
        let moved = PlacementScenario.replicasMoved(from: before, to: after)
        #expect(moved <= leaverLoad + 2, "seed \(seed): \(moved) moved, the departed node held \(leaverLoad)")
        let balance = Placement.Balance(of: after, nodes: remaining)
        let bounds = PlacementBalanceTests.bounds(nodes: remaining.count, partitions: partitions, replicas: 3)
        #expect(bounds.contains(balance.replicasPerNodeMax), "seed \(seed): \(balance)")
        #expect(bounds.contains(balance.replicasPerNodeMin), "seed \(seed): \(balance)")
    }

    /// A long random life: joins, removals, a change of replica count, and several nodes at once.
    /// After every step the shape and the balance bounds must hold, leaders stay within ⌈P/n⌉ + 1, and
    /// recomputing must be a no-op.
    @Test("bounds hold through a random history of membership changes", arguments: 0..<40 as Range<UInt64>)
    func randomHistory(seed: UInt64) {
        var prng = SplitMix64(seed: seed)
        var nodes = PlacementScenario.nodes(prng.below(6) + 1, using: &prng)
        let partitions = [16, 64, 128][prng.below(3)]
        var replicas = prng.below(3) + 2
        var assignment = Placement.assign(nodes: nodes, partitions: partitions, replicas: replicas)
        for step in 0..<25 {
            switch prng.below(5) {
            case 0, 1: nodes.append(PlacementScenario.newNode(besides: nodes, using: &prng))
            case 2 where nodes.count > 1: nodes.remove(at: prng.below(nodes.count))
            case 3: replicas = prng.below(4) + 1
            default:
                for _ in 0..<prng.below(3) + 1 { nodes.append(PlacementScenario.newNode(besides: nodes, using: &prng)) }
                if nodes.count > 3 { nodes.remove(at: prng.below(nodes.count)) }
            }
            let context = "seed \(seed) step \(step): \(nodes.count) nodes, \(replicas) replicas"
            assignment = Placement.assign(
                nodes: nodes, partitions: partitions, replicas: replicas, previous: assignment)
            let problems = PlacementScenario.shapeProblems(
                assignment, nodes: nodes, partitions: partitions, replicas: replicas)
            #expect(problems.isEmpty, "\(context): \(problems.prefix(3))")
            let balance = Placement.Balance(of: assignment, nodes: nodes)
            let bounds = PlacementBalanceTests.bounds(nodes: nodes.count, partitions: partitions, replicas: replicas)
            #expect(bounds.contains(balance.replicasPerNodeMin), "\(context): \(balance)")
            #expect(bounds.contains(balance.replicasPerNodeMax), "\(context): \(balance)")
            let leadersCap = Placement.leadersPerNodeMax(nodes: nodes.count, partitions: partitions)
            #expect(balance.leadersPerNodeMax <= leadersCap + 1, "\(context): \(balance)")
            let again = Placement.assign(
                nodes: nodes, partitions: partitions, replicas: replicas, previous: assignment)
            #expect(again == assignment, "\(context): recomputing changed something")
        }
    }

    @Test("ε is the overload tolerated before replicas move")
    func epsilonTolerance() throws {
        // 31 partitions × 2 replicas on 4 nodes: mean 15.5, so a fresh assignment has loads 16, 16, 15, 15.
        // Moving one replica between the two 16s gives 17, 15, 15, 15: above ⌈mean⌉ but within
        // ⌈1.1 × 15.5⌉ = 18, and nobody below ⌊mean⌋.
        let nodes: [NodeID] = [1, 2, 3, 4]
        var skewed = Placement.assign(nodes: nodes, partitions: 31, replicas: 2)
        let loads = nodes.map { PlacementScenario.load(of: $0, in: skewed) }
        #expect(loads.sorted() == [15, 15, 16, 16])
        let heavy = nodes.filter { PlacementScenario.load(of: $0, in: skewed) == 16 }
        let partition = try #require(
            skewed.indices.first { skewed[$0].contains(heavy[1]) && !skewed[$0].contains(heavy[0]) })
        skewed[partition] = skewed[partition].map { $0 == heavy[1] ? heavy[0] : $0 }
        #expect(PlacementScenario.load(of: heavy[0], in: skewed) == 17)

        let tolerant = Placement.assign(nodes: nodes, partitions: 31, replicas: 2, previous: skewed)
        #expect(Placement.movements(from: skewed, to: tolerant).isEmpty, "17 is within the default capacity 18")
        let strict = Placement.assign(nodes: nodes, partitions: 31, replicas: 2, previous: skewed, epsilon: 0)
        #expect(Placement.movements(from: skewed, to: strict).count == 1, "ε = 0 allows at most ⌈15.5⌉ = 16")
        #expect(Placement.Balance(of: strict, nodes: nodes).replicasPerNodeMax == 16)
    }

    @Test("previous assignments with departed nodes, duplicates, or more replicas than wanted are cleaned")
    func previousIsCleaned() {
        let previous: [[NodeID]] = [[9, 1, 2], [1, 1, 2], [3, 2, 1], [2, 3, 1]]
        let assignment = Placement.assign(nodes: [1, 2, 3], partitions: 4, replicas: 2, previous: previous)
        #expect(PlacementScenario.shapeProblems(assignment, nodes: [1, 2, 3], partitions: 4, replicas: 2).isEmpty)
        #expect(assignment[2].first == 3, "the previous leader is still a replica and has room")
        #expect(Set(assignment[1]) == [1, 2], "duplicates are dropped, the set was already right")
        let grown = Placement.assign(nodes: [1, 2, 3], partitions: 4, replicas: 3, previous: assignment)
        #expect(grown.allSatisfy { Set($0) == [1, 2, 3] })
        #expect(zip(grown, assignment).allSatisfy { $0.first == $1.first }, "growing keeps the leaders")
    }
}
