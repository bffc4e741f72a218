import CairnCore

extension Placement {
    /// How evenly an assignment spreads replicas and preferred leaders over the nodes: what the
    /// rebalancer checks and `cairn ctl status` shows. A skew is max / mean, so 1.0 is perfect.
    public struct Balance: Sendable, Equatable, CustomStringConvertible {
        /// The number of nodes counted (the `nodes` given).
        public var nodeCount: Int
        /// The fewest replicas on one node.
        public var replicasPerNodeMin: Int
        /// The most replicas on one node.
        public var replicasPerNodeMax: Int
        /// Replicas on the listed nodes divided by their number.
        public var replicasPerNodeMean: Double
        /// The fewest partitions one node is the preferred leader of.
        public var leadersPerNodeMin: Int
        /// The most partitions one node is the preferred leader of.
        public var leadersPerNodeMax: Int
        /// Preferred leaderships on the listed nodes divided by their number.
        public var leadersPerNodeMean: Double
        /// Replicas on nodes that are not listed (a departed node the rebalancer has not yet emptied).
        public var replicasElsewhere: Int

        /// Summarizes `assignment` (as `Placement.assign` returns it: the first node of each partition
        /// is its preferred leader) over `nodes`.
        public init(of assignment: [[NodeID]], nodes: [NodeID]) {
            let members = nodes.sorted()
            var replicaCounts = Array(repeating: 0, count: members.count)
            var leaderCounts = Array(repeating: 0, count: members.count)
            var elsewhere = 0
            for set in assignment {
                for (position, node) in set.enumerated() {
                    guard let member = Self.index(of: node, in: members) else {
                        elsewhere += 1
                        continue
                    }
                    replicaCounts[member] += 1
                    if position == 0 { leaderCounts[member] += 1 }
                }
            }
            let divisor = Double(max(members.count, 1))
            self.nodeCount = members.count
            self.replicasPerNodeMin = replicaCounts.min() ?? 0
            self.replicasPerNodeMax = replicaCounts.max() ?? 0
            self.replicasPerNodeMean = Double(replicaCounts.reduce(0, +)) / divisor
            self.leadersPerNodeMin = leaderCounts.min() ?? 0
            self.leadersPerNodeMax = leaderCounts.max() ?? 0
            self.leadersPerNodeMean = Double(leaderCounts.reduce(0, +)) / divisor
            self.replicasElsewhere = elsewhere
        }

        /// The most replicas on one node over the mean; 0 when there are none.
        public var replicaSkew: Double {
            replicasPerNodeMean > 0 ? Double(replicasPerNodeMax) / replicasPerNodeMean : 0
        }

        /// The most preferred leaderships on one node over the mean; 0 when there are none.
        public var leaderSkew: Double {
            leadersPerNodeMean > 0 ? Double(leadersPerNodeMax) / leadersPerNodeMean : 0
        }

        /// `replicas 63...65 (mean 64.0), leaders 21...22 (mean 21.3) on 3 nodes`.
        public var description: String {
            "replicas \(replicasPerNodeMin)...\(replicasPerNodeMax) (mean \(Self.tenths(replicasPerNodeMean))), "
                + "leaders \(leadersPerNodeMin)...\(leadersPerNodeMax) (mean \(Self.tenths(leadersPerNodeMean))) "
                + "on \(nodeCount) nodes" + (replicasElsewhere > 0 ? ", \(replicasElsewhere) elsewhere" : "")
        }

        /// Binary search in the sorted node list (no hashed collection, so nothing depends on its order).
        private static func index(of node: NodeID, in members: [NodeID]) -> Int? {
            var low = 0
            var high = members.count
            while low < high {
                let middle = (low + high) / 2
                if members[middle] < node { low = middle + 1 } else { high = middle }
            }
            return low < members.count && members[low] == node ? low : nil
        }

        /// A number with one decimal, without Foundation's formatting.
        private static func tenths(_ value: Double) -> String {
            let scaled = Int((value * 10).rounded())
            return "\(scaled / 10).\(scaled % 10)"
        }
    }
}
