import CairnCore
import Testing

@testable import CairnPlacement

@Suite("placement movements and balance")
struct PlacementToolsTests {
    @Test("movements pair added and removed nodes in ascending order, partition by partition")
    func movements() {
        let old: [[NodeID]] = [[1, 2, 3], [1, 2, 3], [4, 5, 6], [1, 2], [1, 2, 3]]
        let new: [[NodeID]] = [[3, 2, 1], [7, 2, 9], [4, 5, 6], [1, 2, 3], [1, 2]]
        let moves = Placement.movements(from: old, to: new)
        #expect(
            moves == [
                Placement.Move(partition: 1, target: 7, source: 1),
                Placement.Move(partition: 1, target: 9, source: 3),
                Placement.Move(partition: 3, target: 3, source: nil),
                Placement.Move(partition: 4, target: nil, source: 3),
            ])
        #expect(
            moves.map(\.description) == [
                "partition 1: 1 -> 7", "partition 1: 3 -> 9", "partition 3: + 3", "partition 4: 3 -> gone",
            ])
        #expect(Placement.movements(from: new, to: new).isEmpty)
    }

    @Test("balance counts replicas, preferred leaders, and replicas on unlisted nodes")
    func balance() {
        let assignment: [[NodeID]] = [[1, 2], [1, 3], [2, 3], [9, 1]]
        let balance = Placement.Balance(of: assignment, nodes: [3, 2, 1])
        #expect(balance.nodeCount == 3)
        #expect(balance.replicasPerNodeMin == 2 && balance.replicasPerNodeMax == 3)
        #expect(balance.replicasPerNodeMean == 7.0 / 3.0)
        #expect(balance.leadersPerNodeMin == 0 && balance.leadersPerNodeMax == 2)
        #expect(balance.leadersPerNodeMean == 1)
        #expect(balance.replicasElsewhere == 1)
        #expect(balance.replicaSkew == 3 / (7.0 / 3.0))
        #expect(balance.leaderSkew == 2)
        #expect("\(balance)" == "replicas 2...3 (mean 2.3), leaders 0...2 (mean 1.0) on 3 nodes, 1 elsewhere")
        #expect(Placement.Balance(of: [], nodes: []).replicaSkew == 0)
    }

    @Test("rendezvous weights are pinned: they decide fresh assignments in every version")
    func goldenWeights() {
        #expect(Placement.weight(partition: 0, node: 1) == Placement.weight(partition: 0, node: 1))
        #expect(Placement.weight(partition: 0, node: 1) != Placement.weight(partition: 1, node: 1))
        #expect(Placement.weight(partition: 0, node: 1) != Placement.weight(partition: 0, node: 2))
        let golden: [UInt64] = [0, 1, 2].map { Placement.weight(partition: $0, node: 7) }
        #expect(golden == Self.goldenWeights, "the weight function changed; fresh placements would change too")
    }

    @Test("a small fresh assignment is pinned")
    func goldenAssignment() {
        let assignment = Placement.assign(nodes: [1, 2, 3, 4], partitions: 6, replicas: 3)
        #expect(assignment == Self.goldenAssignment, "\(assignment)")
    }

    static let goldenWeights: [UInt64] = [
        10_951_202_738_262_556_112, 16_345_812_924_965_482_680, 3_612_475_714_148_760_405,
    ]
    static let goldenAssignment: [[NodeID]] = [[3, 4, 1], [4, 2, 1], [2, 1, 4], [1, 3, 2], [3, 2, 4], [4, 3, 2]]
}

@Suite("meta voters")
struct MetaVotersTests {
    @Test("1 or 2 nodes give 1 voter, 3 or 4 give 3, 5 or more give 5")
    func counts() {
        #expect((0...8).map(Placement.metaVotersCount(nodes:)) == [0, 1, 1, 3, 3, 5, 5, 5, 5])
        #expect(Placement.metaVoters(nodes: [], previous: []) == [])
        #expect(Placement.metaVoters(nodes: [4], previous: []) == [4])
        #expect(Placement.metaVoters(nodes: [9, 4], previous: []) == [4], "two voters would be worse than one")
        #expect(Placement.metaVoters(nodes: [9, 4, 6, 2], previous: []) == [2, 4, 6])
        #expect(Placement.metaVoters(nodes: [9, 4, 6, 2, 7, 1], previous: []) == [1, 2, 4, 6, 7])
    }

    @Test("voters that are still present stay voters")
    func sticky() {
        #expect(Placement.metaVoters(nodes: [1, 2, 3, 4], previous: [4, 3, 2]) == [2, 3, 4])
        #expect(Placement.metaVoters(nodes: [5, 1, 2, 3], previous: [5]) == [1, 2, 5], "grow from 1 to 3")
        #expect(Placement.metaVoters(nodes: [1, 2, 3, 4, 5], previous: [3, 4, 5]) == [1, 2, 3, 4, 5])
        #expect(Placement.metaVoters(nodes: [1, 3, 4, 5, 6], previous: [1, 2, 3]) == [1, 3, 4, 5, 6])
        #expect(Placement.metaVoters(nodes: [1, 3, 4, 6], previous: [6, 5, 4, 3, 1]) == [4, 6, 3].sorted())
        #expect(Placement.metaVoters(nodes: [2, 3], previous: [1, 3, 4]) == [3], "a voter that left is replaced")
    }

    @Test("the result does not depend on the order nodes are listed in", arguments: 0..<50 as Range<UInt64>)
    func orderIndependent(seed: UInt64) {
        var prng = SplitMix64(seed: seed)
        let nodes = PlacementScenario.nodes(prng.below(9), using: &prng)
        let previous = Array(PlacementScenario.shuffled(nodes, using: &prng).prefix(prng.below(4)))
        let voters = Placement.metaVoters(nodes: nodes, previous: previous)
        let shuffled = PlacementScenario.shuffled(nodes, using: &prng)
        #expect(voters == Placement.metaVoters(nodes: shuffled, previous: previous), "seed \(seed)")
        #expect(voters.count == Placement.metaVotersCount(nodes: nodes.count), "seed \(seed)")
        #expect(previous.prefix(voters.count).allSatisfy(voters.contains), "seed \(seed): previous voters stay")
    }
}
