import CairnCore
import Testing

@testable import CairnPlacement

@Suite("placement leaders")
struct PlacementLeaderTests {
    /// Method: swap the leaderships of pairs of partitions that share two replicas (p led by a, q led by
    /// b, both held by a and b), as operators' transfers would, so every node keeps its count; then
    /// recomputing must keep every swapped leader.
    @Test("previous leaders are kept while they are replicas and within the bound", arguments: 0..<60 as Range<UInt64>)
    func keepsPreviousLeaders(seed: UInt64) {
        var prng = SplitMix64(seed: seed)
        let nodes = PlacementScenario.nodes(3 + prng.below(8), using: &prng)
        let partitions = [64, 128][prng.below(2)]
        var assignment = Placement.assign(nodes: nodes, partitions: partitions, replicas: 3)
        var transferred = 0
        for _ in 0..<20 {
            let partition = prng.below(partitions)
            let leader = assignment[partition][0]
            let follower = assignment[partition][1 + prng.below(2)]
            guard
                let other = assignment.indices.first(where: {
                    $0 != partition && assignment[$0][0] == follower && assignment[$0].contains(leader)
                })
            else { continue }
            assignment[partition] = [follower] + assignment[partition].filter { $0 != follower }
            assignment[other] = [leader] + assignment[other].filter { $0 != leader }
            transferred += 2
        }
        #expect(transferred > 0, "seed \(seed): the test transferred nothing")
        let again = Placement.assign(nodes: nodes, partitions: partitions, replicas: 3, previous: assignment)
        let changes = PlacementScenario.leaderChanges(from: assignment, to: again)
        #expect(changes == 0, "seed \(seed): \(changes) of \(transferred) transferred leaders changed")
        #expect(Placement.movements(from: assignment, to: again).isEmpty, "seed \(seed)")
    }

    @Test("a leader over the bound gives up leaderships, to the new node first")
    func overloadedLeaderGivesUp() {
        // Node 1 leads everything; the bound for 3 nodes and 6 partitions is 2 each.
        let previous: [[NodeID]] = Array(repeating: [1, 2, 3], count: 6)
        let assignment = Placement.assign(nodes: [1, 2, 3], partitions: 6, replicas: 3, previous: previous)
        #expect(Placement.movements(from: previous, to: assignment).isEmpty)
        let balance = Placement.Balance(of: assignment, nodes: [1, 2, 3])
        #expect(balance.leadersPerNodeMax == 2 && balance.leadersPerNodeMin == 2)
        #expect(assignment.filter { $0.first == 1 }.count == 2, "node 1 keeps as many as it may")
    }

    /// Method: grow a cluster one node at a time from 3 to 8, each placement computed from the previous
    /// one (as joins do), and require every node to lead at least ⌊partitions / nodes⌋ after each step.
    /// Before the floor existed, a fifth node joining 16 partitions led none (four nodes sat at ⌈16/5⌉ = 4).
    @Test("every node, a newly joined one too, leads at least ⌊partitions / nodes⌋", arguments: [16, 64, 128])
    func leadershipFloor(partitions: Int) {
        var nodes: [NodeID] = [1, 2, 3]
        var assignment = Placement.assign(nodes: nodes, partitions: partitions, replicas: 3)
        for next in 4...8 {
            nodes.append(NodeID(rawValue: UInt64(next)))
            assignment = Placement.assign(nodes: nodes, partitions: partitions, replicas: 3, previous: assignment)
            let balance = Placement.Balance(of: assignment, nodes: nodes)
            #expect(
                balance.leadersPerNodeMin >= partitions / nodes.count,
                "\(nodes.count) nodes, \(partitions) partitions: \(balance)")
            #expect(
                balance.leadersPerNodeMax <= Placement.leadersPerNodeMax(nodes: nodes.count, partitions: partitions))
        }
    }

    @Test("when every replica of a partition is full, leaderships shift along a chain")
    func chainShift() {
        // Four partitions, one replica each on two nodes plus a 2-replica partition: only a chain can
        // give partition 3 a leader within ⌈4/3⌉ = 2 per node.
        let previous: [[NodeID]] = [[1, 2], [1, 3], [2, 1], [2, 1]]
        let assignment = Placement.assign(nodes: [1, 2, 3], partitions: 4, replicas: 2, previous: previous)
        let balance = Placement.Balance(of: assignment, nodes: [1, 2, 3])
        #expect(balance.leadersPerNodeMax <= 2)
        #expect(PlacementScenario.shapeProblems(assignment, nodes: [1, 2, 3], partitions: 4, replicas: 2).isEmpty)
    }
}
