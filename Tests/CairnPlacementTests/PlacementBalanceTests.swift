import CairnCore
import Testing

@testable import CairnPlacement

/// Shape, balance, leaders and determinism of `Placement.assign`, over many random node sets.
/// Every failure message carries its seed; `PlacementScenario` makes the node sets.
@Suite("placement balance")
struct PlacementBalanceTests {
    @Test("every partition gets min(replicas, nodes) distinct listed nodes", arguments: 0..<200 as Range<UInt64>)
    func shape(seed: UInt64) {
        var prng = SplitMix64(seed: seed)
        let nodes = PlacementScenario.nodes(prng.below(12) + 1, using: &prng)
        let partitions = prng.below(200)
        let replicas = prng.below(5) + 1
        let assignment = Placement.assign(nodes: nodes, partitions: partitions, replicas: replicas)
        let problems = PlacementScenario.shapeProblems(
            assignment, nodes: nodes, partitions: partitions, replicas: replicas)
        #expect(problems.isEmpty, "seed \(seed): \(problems.prefix(3))")
        let bounds = Self.bounds(nodes: nodes.count, partitions: partitions, replicas: replicas)
        let balance = Placement.Balance(of: assignment, nodes: nodes)
        #expect(bounds.contains(balance.replicasPerNodeMin), "seed \(seed): \(balance), bounds \(bounds)")
        #expect(bounds.contains(balance.replicasPerNodeMax), "seed \(seed): \(balance), bounds \(bounds)")
    }

    /// The brief's bar: 64 (and the default 128) partitions × 3 replicas on 3 to 10 nodes, max/mean ≤ 1.1.
    @Test("a new cluster's replicas are within 10% of the mean", arguments: 0..<160 as Range<UInt64>)
    func freshBalance(seed: UInt64) {
        var prng = SplitMix64(seed: seed)
        let nodes = PlacementScenario.nodes(3 + Int(seed % 8), using: &prng)
        for partitions in [64, 128] {
            let assignment = Placement.assign(nodes: nodes, partitions: partitions, replicas: 3)
            let balance = Placement.Balance(of: assignment, nodes: nodes)
            #expect(balance.replicaSkew <= 1.1, "seed \(seed), \(partitions) partitions: \(balance)")
            let ceiling = (partitions * 3 + nodes.count - 1) / nodes.count
            #expect(balance.replicasPerNodeMax <= ceiling, "seed \(seed): a fresh assignment is as even as can be")
            #expect(balance.replicasPerNodeMin >= partitions * 3 / nodes.count, "seed \(seed): \(balance)")
        }
    }

    @Test("no node is the preferred leader of more than ⌈partitions / nodes⌉", arguments: 0..<200 as Range<UInt64>)
    func leadersSpread(seed: UInt64) {
        var prng = SplitMix64(seed: seed)
        let nodes = PlacementScenario.nodes(prng.below(30) + 1, using: &prng)
        let partitions = [64, 128, prng.below(300) + 1][prng.below(3)]
        let replicas = prng.below(4) + 1
        let assignment = Placement.assign(nodes: nodes, partitions: partitions, replicas: replicas)
        let balance = Placement.Balance(of: assignment, nodes: nodes)
        let cap = Placement.leadersPerNodeMax(nodes: nodes.count, partitions: partitions)
        #expect(balance.leadersPerNodeMax <= cap, "seed \(seed): \(balance), cap \(cap)")
    }

    @Test("the order nodes are listed in does not matter", arguments: 0..<100 as Range<UInt64>)
    func orderIndependent(seed: UInt64) {
        var prng = SplitMix64(seed: seed)
        let nodes = PlacementScenario.nodes(prng.below(10) + 1, using: &prng)
        let shuffled = PlacementScenario.shuffled(nodes, using: &prng)
        let first = Placement.assign(nodes: nodes, partitions: 64, replicas: 3)
        #expect(first == Placement.assign(nodes: shuffled, partitions: 64, replicas: 3), "seed \(seed)")
        let joined = nodes + [PlacementScenario.newNode(besides: nodes, using: &prng)]
        let reshuffled = PlacementScenario.shuffled(joined, using: &prng)
        #expect(
            Placement.assign(nodes: joined, partitions: 64, replicas: 3, previous: first)
                == Placement.assign(nodes: reshuffled, partitions: 64, replicas: 3, previous: first), "seed \(seed)")
    }

    @Test("a replica count above the node count gives every partition every node")
    func fewNodes() {
        let assignment = Placement.assign(nodes: [7, 3], partitions: 4, replicas: 3)
        #expect(assignment.map { Set($0) } == Array(repeating: [3, 7], count: 4))
        #expect(Placement.Balance(of: assignment, nodes: [3, 7]).leadersPerNodeMax == 2)
        #expect(Placement.assign(nodes: [5], partitions: 3, replicas: 3) == [[5], [5], [5]])
    }

    @Test("no nodes or no partitions give empty assignments")
    func empty() {
        #expect(Placement.assign(nodes: [], partitions: 3, replicas: 3) == [[], [], []])
        #expect(Placement.assign(nodes: [1, 2, 3], partitions: 0, replicas: 3) == [])
        let left = Placement.assign(nodes: [], partitions: 2, replicas: 3, previous: [[1, 2, 3], [2, 3, 1]])
        #expect(left == [[], []])
    }

    @Test("capacity is ⌈(1 + ε) × mean⌉, never below ⌈mean⌉")
    func capacity() {
        #expect(Placement.capacity(nodes: 3, partitions: 64, replicas: 3) == 71, "64 × 1.1 = 70.4")
        #expect(Placement.capacity(nodes: 10, partitions: 64, replicas: 3) == 22, "19.2 × 1.1 = 21.12")
        #expect(Placement.capacity(nodes: 30, partitions: 64, replicas: 3, epsilon: 0) == 7, "⌈6.4⌉")
        #expect(Placement.capacity(nodes: 4, partitions: 64, replicas: 3, epsilon: 0) == 48)
        #expect(Placement.capacity(nodes: 2, partitions: 10, replicas: 3) == 11, "two nodes hold 2 replicas each")
        #expect(Placement.leadersPerNodeMax(nodes: 3, partitions: 64) == 22)
        #expect(Placement.leadersPerNodeMax(nodes: 200, partitions: 64) == 1)
    }

    @Test("the checks themselves can fail: a bad assignment is detected")
    func checksDetectProblems() {
        let nodes: [NodeID] = [1, 2, 3]
        let repeated: [[NodeID]] = [[1, 1, 2], [1, 2, 3]]
        #expect(!PlacementScenario.shapeProblems(repeated, nodes: nodes, partitions: 2, replicas: 3).isEmpty)
        let unknown: [[NodeID]] = [[1, 2, 9], [1, 2, 3]]
        #expect(!PlacementScenario.shapeProblems(unknown, nodes: nodes, partitions: 2, replicas: 3).isEmpty)
        let short: [[NodeID]] = [[1, 2], [1, 2, 3]]
        #expect(!PlacementScenario.shapeProblems(short, nodes: nodes, partitions: 2, replicas: 3).isEmpty)
        let skewed = Array(repeating: [NodeID(1), 2], count: 6) + [[3, 1]]
        let balance = Placement.Balance(of: skewed, nodes: nodes)
        #expect(balance.replicaSkew > 1.1)
        #expect(!Self.bounds(nodes: 3, partitions: 7, replicas: 2).contains(balance.replicasPerNodeMax))
    }

    /// The loads `Placement` promises: `⌊mean⌋ ... capacity`.
    static func bounds(nodes: Int, partitions: Int, replicas: Int, epsilon: Double = Placement.epsilonDefault)
        -> ClosedRange<Int>
    {
        let floor = partitions * min(replicas, nodes) / nodes
        return floor...Placement.capacity(nodes: nodes, partitions: partitions, replicas: replicas, epsilon: epsilon)
    }
}
