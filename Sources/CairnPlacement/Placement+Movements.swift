import CairnCore

extension Placement {
    /// One step of a rebalance: a partition gains a replica on `target`, loses the one on `source`, or
    /// both (the usual case: copy to `target`, then drop `source`). A change of leader alone is not a move.
    public struct Move: Sendable, Equatable, CustomStringConvertible {
        /// The partition whose replica set changes.
        public var partition: PartitionID
        /// The node that gains a replica, if any.
        public var target: NodeID?
        /// The node that loses a replica, if any.
        public var source: NodeID?

        public init(partition: PartitionID, target: NodeID?, source: NodeID?) {
            precondition(target != nil || source != nil, "a move of partition \(partition) needs a node")
            self.partition = partition
            self.target = target
            self.source = source
        }

        /// `partition 7: 3 -> 5`, `partition 7: + 5`, or `partition 7: 3 -> gone`.
        public var description: String {
            switch (source, target) {
            case (let source?, let target?): "partition \(partition): \(source) -> \(target)"
            case (nil, let target?): "partition \(partition): + \(target)"
            case (let source?, nil): "partition \(partition): \(source) -> gone"
            case (nil, nil): "partition \(partition): nothing"
            }
        }
    }

    /// The replica moves that turn `old` into `new`, partition by partition. Within a partition, added
    /// and removed nodes are paired in ascending order; what is left over is a move with only a target
    /// (the replica count grew) or only a source (it shrank). Reordering a partition's replicas, such as
    /// a new preferred leader, is not a move.
    /// - Precondition: `old` and `new` have the same number of partitions.
    public static func movements(from old: [[NodeID]], to new: [[NodeID]]) -> [Move] {
        precondition(old.count == new.count, "movements between \(old.count) and \(new.count) partitions")
        var moves: [Move] = []
        for partition in old.indices {
            let targets = new[partition].filter { !old[partition].contains($0) }.sorted()
            let sources = old[partition].filter { !new[partition].contains($0) }.sorted()
            for step in 0..<max(targets.count, sources.count) {
                moves.append(
                    Move(
                        partition: PartitionID(UInt16(partition)),
                        target: step < targets.count ? targets[step] : nil,
                        source: step < sources.count ? sources[step] : nil))
            }
        }
        return moves
    }
}
