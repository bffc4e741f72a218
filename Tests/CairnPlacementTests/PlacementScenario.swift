import CairnCore

@testable import CairnPlacement

/// Random clusters and the measurements the placement tests and the report share.
enum PlacementScenario {
    /// `count` distinct random node IDs (never 0), in random order.
    static func nodes(_ count: Int, using prng: inout SplitMix64) -> [NodeID] {
        var nodes: [NodeID] = []
        while nodes.count < count {
            let node = NodeID(prng.next() % 1_000_000 + 1)
            if !nodes.contains(node) { nodes.append(node) }
        }
        return nodes
    }

    /// A node ID not in `nodes`.
    static func newNode(besides nodes: [NodeID], using prng: inout SplitMix64) -> NodeID {
        while true {
            let node = NodeID(prng.next() % 1_000_000 + 1)
            if !nodes.contains(node) { return node }
        }
    }

    /// `nodes` in a random order (Fisher–Yates with the seeded generator).
    static func shuffled(_ nodes: [NodeID], using prng: inout SplitMix64) -> [NodeID] {
        var shuffled = nodes
        for index in stride(from: shuffled.count - 1, to: 0, by: -1) {
            shuffled.swapAt(index, prng.below(index + 1))
        }
        return shuffled
    }

    /// Replicas copied to a node that did not hold them: the cost of going from `old` to `new`.
    static func replicasMoved(from old: [[NodeID]], to new: [[NodeID]]) -> Int {
        Placement.movements(from: old, to: new).filter { $0.target != nil }.count
    }

    /// Partitions whose preferred leader differs.
    static func leaderChanges(from old: [[NodeID]], to new: [[NodeID]]) -> Int {
        zip(old, new).filter { $0.first != $1.first }.count
    }

    /// Partitions whose previous preferred leader no longer holds a replica: their leader must change.
    static func leadersLost(from old: [[NodeID]], to new: [[NodeID]]) -> Int {
        zip(old, new).filter { old, new in old.first.map { !new.contains($0) } ?? false }.count
    }

    /// Replicas held by `node`.
    static func load(of node: NodeID, in assignment: [[NodeID]]) -> Int {
        assignment.filter { $0.contains(node) }.count
    }

    /// What is wrong with the shape of `assignment`, in words; empty when nothing is.
    static func shapeProblems(_ assignment: [[NodeID]], nodes: [NodeID], partitions: Int, replicas: Int) -> [String] {
        var problems: [String] = []
        if assignment.count != partitions { problems.append("\(assignment.count) partitions, not \(partitions)") }
        for (partition, set) in assignment.enumerated() {
            if set.count != min(replicas, nodes.count) { problems.append("partition \(partition) has \(set)") }
            if Set(set).count != set.count { problems.append("partition \(partition) repeats a node: \(set)") }
            if !set.allSatisfy(nodes.contains) { problems.append("partition \(partition) has an unknown node") }
        }
        return problems
    }
}
