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
    }

    /// Step 2: gives every partition that lacks replicas the best members that do not hold it yet.
    mutating func fill() {
        for partition in replicas.indices {
            while replicas[partition].count < replicasPerPartition {
                var best: (member: Int, tier: Int, weight: UInt64)? = nil
                for member in members.indices where !replicas[partition].contains(member) {
                    let tier = self.tier(of: member)
                    let weight = Placement.weight(partition: partition, node: members[member])
                    if let current = best, (current.tier, ~current.weight) <= (tier, ~weight) { continue }
                    best = (member, tier, weight)
                }
                guard let best else { preconditionFailure("partition \(partition) has every member already") }
                replicas[partition].append(best.member)
                loads[best.member] += 1
            }
        }
    }

    /// How welcome another replica is on `member`: 0 below the floor, 1 below the ceiling, 2 below the
    /// capacity, 3 at or above it. Lower is more welcome.
    private func tier(of member: Int) -> Int {
        let load = loads[member]
        if load < loadFloor { return 0 }
        if load < loadCeiling { return 1 }
        if load < loadCapacity { return 2 }
        return 3
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
