import CairnCore

/// An assignment being worked out by `Placement.assign`: replica sets as indices into the sorted member
/// list, and each member's load, kept in step. See `Placement` for the algorithm this carries out.
struct PlacementDraft {
    /// The nodes, sorted, so that nothing depends on the order the caller listed them in.
    let members: [NodeID]
    /// Replicas each partition gets: `min(replicas, members.count)`.
    let replicasPerPartition: Int
    /// The lower bound on a member's load, `⌊m⌋`.
    let loadFloor: Int
    /// The load filling aims at, `⌈m⌉`.
    let loadCeiling: Int
    /// The upper bound on a member's load, `C`.
    let loadCapacity: Int
    /// Each partition's replicas (member indices), in preference order.
    private(set) var replicas: [[Int]]
    /// Each partition's previous preferred leader, if it is still a replica.
    private(set) var previousLeaders: [Int?]
    /// Each member's number of replicas.
    private(set) var loads: [Int]
    /// Each partition's replicas as step 1 kept them from the previous assignment.
    private(set) var keptReplicas: [[Int]]

    init(members: [NodeID], partitions: Int, replicas: Int, previous: [[NodeID]]?, epsilon: Double) {
        precondition(!members.isEmpty, "a draft needs at least one member")
        self.members = members
        self.replicasPerPartition = min(replicas, members.count)
        let total = partitions * replicasPerPartition
        self.loadFloor = total / members.count
        self.loadCeiling = (total + members.count - 1) / members.count
        self.loadCapacity = Placement.capacity(
            nodes: members.count, partitions: partitions, replicas: replicas, epsilon: epsilon)
        self.replicas = Array(repeating: [], count: partitions)
        self.previousLeaders = Array(repeating: nil, count: partitions)
        self.loads = Array(repeating: 0, count: members.count)
        self.keptReplicas = Array(repeating: [], count: partitions)
        guard let previous else { return }

        // Step 1, keep: the dictionary is only looked up, never iterated.
        var memberIndex: [NodeID: Int] = [:]
        for (index, node) in members.enumerated() { memberIndex[node] = index }
        for (partition, nodes) in previous.enumerated() {
            for node in nodes {
                guard self.replicas[partition].count < replicasPerPartition else { break }
                guard let member = memberIndex[node], !self.replicas[partition].contains(member) else { continue }
                self.replicas[partition].append(member)
                self.loads[member] += 1
            }
            if let first = nodes.first, let member = memberIndex[first], self.replicas[partition].first == member {
                self.previousLeaders[partition] = member
            }
        }
        self.keptReplicas = self.replicas
    }

    /// Step 2: gives every partition that lacks replicas members that do not hold it yet, in stages:
    /// first up to `loadFloor` per member, then up to `loadCeiling`, then up to `loadCapacity`, then to
    /// the least loaded members. Within a stage a replica goes to the member with the highest weight that
    /// has room; when none has, replicas placed by this step (never kept ones, which would cost a move)
    /// are shifted along the shortest chain that ends at a member with room. That is a bipartite
    /// matching (Kuhn's algorithm), so a stage places as many replicas as any order could.
    mutating func fill() {
        var added: [[Int]] = Array(repeating: [], count: members.count)
        for cap in [loadFloor, loadCeiling, loadCapacity] {
            for partition in replicas.indices {
                while replicas[partition].count < replicasPerPartition {
                    guard place(partition, cap: cap, added: &added) else { break }
                }
            }
        }
        for partition in replicas.indices {
            while replicas[partition].count < replicasPerPartition {
                var best: (member: Int, load: Int, weight: UInt64)? = nil
                for member in members.indices where !replicas[partition].contains(member) {
                    let weight = Placement.weight(partition: partition, node: members[member])
                    if let current = best, (current.load, ~current.weight) <= (loads[member], ~weight) { continue }
                    best = (member, loads[member], weight)
                }
                guard let best else { preconditionFailure("partition \(partition) has every member already") }
                add(partition, to: best.member, added: &added)
            }
        }
    }

    /// Places one more replica of `partition` on a member whose load stays within `cap`.
    /// - Returns: `false` if no member, not even after shifting replicas this step added, has room.
    private mutating func place(_ partition: Int, cap: Int, added: inout [[Int]]) -> Bool {
        guard members.indices.contains(where: { loads[$0] < cap }) else { return false }
        var best: (member: Int, weight: UInt64)? = nil
        for member in members.indices where loads[member] < cap && !replicas[partition].contains(member) {
            let weight = Placement.weight(partition: partition, node: members[member])
            if let current = best, current.weight >= weight { continue }
            best = (member, weight)
        }
        if let best {
            add(partition, to: best.member, added: &added)
            return true
        }
        return augment(partition, cap: cap, added: &added)
    }

    /// Breadth-first search for the shortest chain: `root` → a member b that lacks it → a replica q that
    /// this step added to b → a member c that lacks q → … ending at a member with room under `cap`. Then
    /// each replica on the chain shifts one step, so only the last member's load grows.
    private mutating func augment(_ root: Int, cap: Int, added: inout [[Int]]) -> Bool {
        // How a member was reached: by moving a replica of `partition` to it from `from` (nil: the root).
        var reachedBy: [(partition: Int, from: Int?)?] = Array(repeating: nil, count: members.count)
        var queue: [Int] = []
        for member in members.indices where !replicas[root].contains(member) {
            reachedBy[member] = (root, nil)
            queue.append(member)
        }
        var head = 0
        while head < queue.count {
            let member = queue[head]
            head += 1
            if loads[member] < cap {
                var current: Int? = member
                while let node = current, let step = reachedBy[node] {
                    if let from = step.from { remove(step.partition, from: from, added: &added) }
                    add(step.partition, to: node, added: &added)
                    current = step.from
                }
                return true
            }
            for partition in added[member] {
                for next in members.indices where reachedBy[next] == nil && !replicas[partition].contains(next) {
                    reachedBy[next] = (partition, member)
                    queue.append(next)
                }
            }
        }
        return false
    }

    private mutating func add(_ partition: Int, to member: Int, added: inout [[Int]]) {
        precondition(!replicas[partition].contains(member), "member \(member) already holds partition \(partition)")
        replicas[partition].append(member)
        added[member].append(partition)
        loads[member] += 1
    }

    private mutating func remove(_ partition: Int, from member: Int, added: inout [[Int]]) {
        precondition(added[member].contains(partition), "only replicas added by fill may shift")
        replicas[partition].removeAll { $0 == member }
        added[member].removeAll { $0 == partition }
        loads[member] -= 1
    }

    /// Step 3: moves replicas from the most to the least loaded member until every load is within
    /// `loadFloor...loadCapacity`.
    mutating func rebalance() {
        // Each move lowers the sum of squared loads by at least 2, and that sum is at most total².
        let total = loads.reduce(0, +)
        var turnsLeft = total * total / 2 + 1
        while true {
            var heaviest = 0
            var lightest = 0
            for member in members.indices {
                if loads[member] > loads[heaviest] { heaviest = member }
                if loads[member] < loads[lightest] { lightest = member }
            }
            guard loads[heaviest] > loadCapacity || loads[lightest] < loadFloor else { return }
            precondition(
                loads[heaviest] >= loads[lightest] + 2,
                "rebalance: loads \(loads[heaviest]) and \(loads[lightest]) outside \(loadFloor)...\(loadCapacity)")
            precondition(turnsLeft > 0, "rebalance did not converge; loads \(loads)")
            turnsLeft -= 1
            move(from: heaviest, to: lightest)
        }
    }

    /// Moves one replica from `source` to `target`: of the partitions `source` holds and `target` does
    /// not, one that `source` was not the previous leader of if possible, then the one `target` has the
    /// highest weight for.
    private mutating func move(from source: Int, to target: Int) {
        var best: (partition: Int, wasLeader: Bool, weight: UInt64)? = nil
        for partition in replicas.indices
        where replicas[partition].contains(source) && !replicas[partition].contains(target) {
            let wasLeader = previousLeaders[partition] == source
            let weight = Placement.weight(partition: partition, node: members[target])
            if let current = best, (current.wasLeader ? 1 : 0, ~current.weight) <= (wasLeader ? 1 : 0, ~weight) {
                continue
            }
            best = (partition, wasLeader, weight)
        }
        // A member holding more partitions than another holds one the other lacks.
        guard let best else { preconditionFailure("no partition can move from member \(source) to \(target)") }
        replicas[best.partition].removeAll { $0 == source }
        replicas[best.partition].append(target)
        loads[source] -= 1
        loads[target] += 1
        if best.wasLeader { previousLeaders[best.partition] = nil }
    }

    /// Checks what steps 1 to 3 promise: full, distinct replica sets and loads within bounds.
    func checkInvariants() {
        var counted = Array(repeating: 0, count: members.count)
        for (partition, set) in replicas.enumerated() {
            precondition(set.count == replicasPerPartition, "partition \(partition) has replicas \(set)")
            precondition(Set(set).count == set.count, "partition \(partition) has a duplicate replica: \(set)")
            for member in set { counted[member] += 1 }
        }
        precondition(counted == loads, "loads \(loads) do not match the replica sets \(counted)")
        for load in loads {
            precondition(load >= loadFloor, "a load \(load) is below the floor \(loadFloor)")
            precondition(load <= loadCapacity, "a load \(load) is above the capacity \(loadCapacity)")
        }
    }
}
