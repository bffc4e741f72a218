import CairnCore
import Foundation
import Testing

@testable import CairnPlacement

/// Prints the balance and movement numbers quoted in docs/placement.md, as a Markdown table. It asserts
/// nothing; `PlacementBalanceTests` and `PlacementMovementTests` check the bounds. Run with
/// `PLACEMENT_REPORT=1` (it takes about a minute in a debug build).
@Suite("placement report")
struct PlacementReport {
    static let isEnabled = ProcessInfo.processInfo.environment["PLACEMENT_REPORT"] == "1"

    @Test("report balance and movement over many random clusters", .enabled(if: isEnabled))
    func report() {
        print(
            "| P | n | replicas max/mean | leaders max (⌈P/n⌉) | join: moved / optimum (worst) | leave: extra moves | join: leader changes beyond needed |"
        )
        print("| --- | --- | --- | --- | --- | --- | --- |")
        for partitions in [64, 128] {
            for nodeCount in [3, 4, 5, 6, 7, 8, 9, 10, 15, 20, 30] {
                print(Self.row(partitions: partitions, nodeCount: nodeCount, seeds: 0..<200))
            }
        }
    }

    /// One table row: the worst case over `seeds` random node sets of `nodeCount` nodes.
    static func row(partitions: Int, nodeCount: Int, seeds: Range<UInt64>) -> String {
        var skewMax = 0.0
        var leadersMax = 0
        var joinWorst = (moved: 0, ratio: 0.0)
        var leaveExtraMax = 0
        var leaderExtraMax = 0
        for seed in seeds {
            var prng = SplitMix64(seed: seed)
            let nodes = PlacementScenario.nodes(nodeCount, using: &prng)
            let fresh = Placement.assign(nodes: nodes, partitions: partitions, replicas: 3)
            let balance = Placement.Balance(of: fresh, nodes: nodes)
            skewMax = max(skewMax, balance.replicaSkew)
            leadersMax = max(leadersMax, balance.leadersPerNodeMax)

            let joiner = PlacementScenario.newNode(besides: nodes, using: &prng)
            let joined = Placement.assign(nodes: nodes + [joiner], partitions: partitions, replicas: 3, previous: fresh)
            let optimum = Double(partitions * 3) / Double(nodeCount + 1)
            let moved = PlacementScenario.replicasMoved(from: fresh, to: joined)
            if Double(moved) / optimum > joinWorst.ratio { joinWorst = (moved, Double(moved) / optimum) }
            let needed =
                PlacementScenario.leadersLost(from: fresh, to: joined) + joined.filter { $0.first == joiner }.count
            leaderExtraMax = max(leaderExtraMax, PlacementScenario.leaderChanges(from: fresh, to: joined) - needed)

            let leaver = nodes[prng.below(nodes.count)]
            guard nodeCount > 3 else { continue }
            let remaining = nodes.filter { $0 != leaver }
            let left = Placement.assign(nodes: remaining, partitions: partitions, replicas: 3, previous: fresh)
            let extra =
                PlacementScenario.replicasMoved(from: fresh, to: left) - PlacementScenario.load(of: leaver, in: fresh)
            leaveExtraMax = max(leaveExtraMax, extra)
        }
        let leadersCap = Placement.leadersPerNodeMax(nodes: nodeCount, partitions: partitions)
        let optimum = Double(partitions * 3) / Double(nodeCount + 1)
        let leave = nodeCount > 3 ? "\(leaveExtraMax)" : "n/a"
        return "| \(partitions) | \(nodeCount) | \(Self.format(skewMax)) | \(leadersMax) (\(leadersCap)) | "
            + "\(joinWorst.moved) / \(Self.format(optimum)) = \(Self.format(joinWorst.ratio)) | \(leave) | \(leaderExtraMax) |"
    }

    static func format(_ value: Double) -> String { String(format: "%.3f", value) }
}
