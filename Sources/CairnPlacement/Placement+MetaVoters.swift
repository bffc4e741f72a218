import CairnCore

extension Placement {
    /// The voters of the meta group (the Raft group that holds the cluster map) for the given nodes.
    ///
    /// The rule: 1 or 2 nodes → 1 voter; 3 or 4 nodes → 3 voters; 5 or more → 5 voters. Why:
    /// - A Raft group of `v` voters survives `⌊(v - 1) / 2⌋` failures, so only odd sizes add tolerance.
    ///   Two voters tolerate no failure, like one, but stop when *either* fails: twice the ways to lose
    ///   the cluster map. So a 2-node cluster keeps one voter and waits for a third node.
    /// - Four voters tolerate one failure, like three, but every change waits for three acks instead of
    ///   two. So 3 or 4 nodes give 3 voters.
    /// - Five voters tolerate two failures. More would slow every map change (one more ack, on a group
    ///   the whole cluster depends on) for failures that a cluster of this size rarely sees at once;
    ///   etcd and Consul recommend the same.
    ///
    /// Sticky: voters in `previous` that are still among `nodes` stay voters (the first ones in
    /// `previous`'s order, if there are more than needed), because every change of voters is a Raft
    /// membership change. Free seats go to the nodes with the lowest IDs, which are usually the oldest
    /// (DESIGN.md §6: the first three nodes to form the cluster).
    /// - Parameters:
    ///   - nodes: The nodes that may vote, in any order.
    ///   - previous: The current voters (empty for a new cluster).
    /// - Returns: The voters, in ascending order.
    public static func metaVoters(nodes: [NodeID], previous: [NodeID]) -> [NodeID] {
        metaVoters(nodes: nodes, previous: previous, count: metaVotersCount(nodes: nodes.count))
    }

    /// The meta voters chosen among `nodes`, `count` of them (fewer if there are fewer nodes): for a
    /// cluster with nodes that are down, sized by all its nodes but placed on the live ones, so that a
    /// dead node is replaced, not the group shrunk (shrinking 3 voters to 1 would remove a live voter
    /// while the dead one still counts towards every commit).
    public static func metaVoters(nodes: [NodeID], previous: [NodeID], count wanted: Int) -> [NodeID] {
        let members = nodes.sorted()
        let count = min(wanted, members.count)
        var voters: [NodeID] = []
        for node in previous where voters.count < count && members.contains(node) && !voters.contains(node) {
            voters.append(node)
        }
        for node in members where voters.count < count && !voters.contains(node) {
            voters.append(node)
        }
        precondition(voters.count == count, "meta group wants \(count) voters, found \(voters.count)")
        return voters.sorted()
    }

    /// How many voters the meta group has with `nodes` nodes: 0, 1, 3 or 5 (see `metaVoters`).
    public static func metaVotersCount(nodes: Int) -> Int {
        switch nodes {
        case ..<1: 0
        case 1...2: 1
        case 3...4: 3
        default: 5
        }
    }
}
