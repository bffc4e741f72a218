import CairnCore

/// Placement: which nodes hold each partition's replicas, and which replica is the preferred leader.
/// Consistent hashing with bounded loads (Mirrokni, Thorup and Zadimoghaddam, "Consistent Hashing with
/// Bounded Loads", SODA 2018), made sticky so that a change of membership moves as few replicas as it
/// must (DESIGN.md §6).
///
/// ## What it computes
///
/// `assign(nodes:partitions:replicas:previous:epsilon:)` is a pure function. Its result is indexed by
/// partition number; each entry lists `min(replicas, nodes.count)` distinct nodes, and the first is the
/// partition's *preferred leader* (the node the rebalancer asks to lead the partition's group). The meta
/// leader calls it when membership changes, stores the result in the cluster map, and moves replicas one
/// step at a time toward it (`movements(from:to:)`); the order of the moves is the rebalancer's business.
///
/// ## Terms
///
/// With `n` nodes, `P` partitions and `R = min(replicas, n)`, there are `T = P × R` replicas and the mean
/// load is `m = T / n`. A node's *load* is the number of replicas it holds. The *capacity* is
/// `C = max(⌈m⌉, ⌈(1 + ε) × m⌉)`. Every node's *weight* for a partition is a fixed 64-bit hash of
/// (partition, node): rendezvous (highest-random-weight) hashing, which ranks the nodes differently for
/// each partition, so the choices spread evenly and do not depend on the order nodes are listed in.
///
/// ## The algorithm
///
/// 1. **Keep.** Start from `previous`: drop replicas on nodes that are no longer listed and duplicates,
///    and keep at most `R` replicas per partition (the first ones, so the preferred leader stays).
/// 2. **Fill.** Place the missing replicas, in stages: first no node may pass `⌊m⌋`, then `⌈m⌉`, then
///    `C`; replicas left over after that go to the least loaded nodes (step 3 then fixes the loads). In a
///    stage, a partition's replica goes to the node with the highest weight that has room and does not
///    hold the partition. When no such node exists, replicas placed earlier *in this step* are shifted
///    along the shortest chain that ends at a node with room (an augmenting path, as in Kuhn's bipartite
///    matching); kept replicas never shift, since shifting them would be a move. So each stage places as
///    many replicas as any order could. (The paper's rule is "the highest-ranked node under capacity"
///    alone; filling the emptiest nodes first and matching re-homes a departed node's replicas without
///    overloading anyone, which saves the moves step 3 would need: 0 extra in every measured removal.)
/// 3. **Rebalance.** While the most loaded node is above `C`, or the least loaded is below `⌊m⌋`, move
///    one replica from the most loaded node to the least loaded one. Such a move always exists: a node
///    that holds more partitions than another holds one the other lacks. The moved replica is one whose
///    node is not the partition's previous leader if possible, and the one the receiver has the highest
///    weight for. Each move lowers the sum of squared loads (the two differ by at least 2), so the loop
///    ends; a limit on its turns checks that.
/// 4. **Leaders.** Each node may be the preferred leader of at most `L = ⌈P / n⌉` partitions. First every
///    partition keeps its previous leader if that node is still a replica and has room under `L`; then
///    each other partition takes the replica with the fewest leaderships, or, when all its replicas are
///    full, frees one by shifting leaderships along the shortest chain of replicas (an augmenting path).
///    Only if no chain exists is the bound raised by one for that partition (and again if need be).
///
/// ## Guarantees
///
/// - Every partition has `R` distinct replicas, all on listed nodes.
/// - **Balance:** every node holds between `⌊m⌋` and `C` replicas. Filling (step 2) aims at `⌈m⌉`, so a
///   fresh assignment is usually perfectly balanced; `ε` is the overload *tolerated* before replicas are
///   moved, not a target. When `m` is small, `⌈m⌉` dominates: a node may hold one replica more than the
///   mean, whatever `ε` says.
/// - **Stickiness:** with the same nodes, `assign(previous: x)` returns `x` when `x` is its own output:
///   nothing moves, no leader changes.
/// - **Movement on a join:** the new node starts empty, below `⌊m⌋`, so step 3 moves replicas onto it
///   (about `⌊m⌋`, its fair share) and to nowhere else, unless old nodes end up above the smaller `C`.
/// - **Movement on a removal:** the departed node's replicas are re-homed by step 2, onto the nodes
///   with the fewest replicas; step 3 rarely has to add a move. `PlacementMovementTests` states and
///   checks the measured bounds; docs/placement.md lists the numbers.
/// - **Leaders:** at most `⌈P / n⌉` per node whenever the replica sets allow it (a matching exists);
///   otherwise the fewest extra. Every measured case stayed within `⌈P / n⌉`; the tests allow one more
///   only through long random histories.
/// - **Determinism:** the result depends only on the set of nodes, the counts, `previous` and `ε`; never
///   on the order of `nodes`, on `Hasher` seeds, or on a clock.
///
/// Deviations from the paper: the paper places items one at a time and never revisits them; Cairn starts
/// from the previous assignment (stickiness), and adds the lower bound `⌊m⌋` (step 3) so a new node
/// receives its share at once rather than only as later items arrive.
public enum Placement {
    /// The default overload tolerance: a node may hold up to 10% more replicas than the mean (rounded
    /// up) before the rebalancer moves some away. Smaller values move more replicas on membership
    /// changes to keep a tighter balance; larger values move fewer.
    public static let epsilonDefault = 0.1

    /// Assigns replicas and preferred leaders to every partition.
    /// - Parameters:
    ///   - nodes: The nodes that may hold replicas, in any order.
    ///   - partitions: The number of partitions (`PartitionTable.count`).
    ///   - replicas: The wanted number of replicas per partition; fewer are placed when there are fewer
    ///     nodes.
    ///   - previous: The current assignment, indexed by partition, or `nil` for a new cluster. Nodes in
    ///     it that are not in `nodes` are dropped.
    ///   - epsilon: The overload tolerance `ε` (see the type's documentation).
    /// - Returns: For each partition, `min(replicas, nodes.count)` distinct nodes; the first is the
    ///   preferred leader.
    /// - Precondition: `nodes` has no duplicates, `partitions >= 0`, `replicas >= 1`, `epsilon` is finite
    ///   and not negative, and `previous` (if given) has `partitions` entries.
    public static func assign(
        nodes: [NodeID], partitions: Int, replicas: Int, previous: [[NodeID]]? = nil,
        epsilon: Double = epsilonDefault
    ) -> [[NodeID]] {
        precondition(partitions >= 0, "partitions must not be negative, got \(partitions)")
        precondition(replicas >= 1, "replicas must be at least 1, got \(replicas)")
        precondition(epsilon >= 0 && epsilon.isFinite, "epsilon must be finite and not negative, got \(epsilon)")
        if let previous {
            precondition(
                previous.count == partitions,
                "previous assignment has \(previous.count) partitions, expected \(partitions)")
        }
        let members = nodes.sorted()
        for index in members.indices.dropFirst() {
            precondition(members[index - 1] != members[index], "node \(members[index]) is listed twice")
        }
        guard !members.isEmpty else { return Array(repeating: [], count: partitions) }

        var draft = PlacementDraft(
            members: members, partitions: partitions, replicas: replicas, previous: previous, epsilon: epsilon)
        draft.fill()
        draft.rebalance()
        draft.checkInvariants()
        return draft.ordered(leaders: draft.chooseLeaders())
    }

    /// The most replicas `assign` lets one node hold: `max(⌈m⌉, ⌈(1 + ε) × m⌉)` where `m` is the mean.
    /// Exposed so tests and `cairn ctl status` can show how close a node is to it.
    /// - Precondition: `nodes > 0`.
    public static func capacity(nodes: Int, partitions: Int, replicas: Int, epsilon: Double = epsilonDefault) -> Int {
        precondition(nodes > 0, "capacity needs at least one node")
        let total = partitions * min(replicas, nodes)
        let ceiling = (total + nodes - 1) / nodes
        let tolerated = Int((Double(total) * (1 + epsilon) / Double(nodes)).rounded(.up))
        return max(ceiling, tolerated)
    }

    /// The most partitions one node should be the preferred leader of: `⌈partitions / nodes⌉`.
    /// - Precondition: `nodes > 0`.
    public static func leadersPerNodeMax(nodes: Int, partitions: Int) -> Int {
        precondition(nodes > 0, "leadersPerNodeMax needs at least one node")
        return (partitions + nodes - 1) / nodes
    }

    /// The rendezvous weight of `node` for `partition`: a fixed 64-bit hash, the same in every process
    /// and every version (golden values in the tests pin it). Never `Hasher`, which is seeded per process.
    static func weight(partition: Int, node: NodeID) -> UInt64 {
        var partitionMix = SplitMix64(seed: UInt64(partition) ^ 0x6361_6972_6E2D_706C)  // "cairn-pl"
        var pairMix = SplitMix64(seed: partitionMix.next() ^ node.rawValue)
        return pairMix.next()
    }
}
