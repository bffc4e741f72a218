import CairnCore

extension PlacementDraft {
    /// Step 4: picks each partition's preferred leader among its replicas, at most
    /// `⌈partitions / members⌉` per member, keeping previous leaders where that bound allows; then
    /// gives every member at least `⌊partitions / members⌋` where its replicas allow (a joining node
    /// would otherwise lead nothing while the others sit at the bound).
    /// - Returns: The leader (a member index) of each partition.
    func chooseLeaders() -> [Int] {
        var book = LeaderBook(
            partitions: replicas.count, members: members.count,
            cap: Placement.leadersPerNodeMax(nodes: members.count, partitions: replicas.count))
        // Previous leaders stay first where the replica set did not change, so that a node with more
        // leaderships than the bound gives up those of partitions that gained a replica: the newcomer
        // (often a joining node with no leaderships yet) can usually take them without a chain of shifts.
        let gained = replicas.indices.map { partition in
            replicas[partition].contains { !keptReplicas[partition].contains($0) }
        }
        for round in [false, true] {
            for partition in replicas.indices where gained[partition] == round {
                if let leader = previousLeaders[partition], book.counts[leader] < book.cap {
                    book.assign(partition, to: leader)
                }
            }
        }
        for partition in replicas.indices where book.leaders[partition] == nil {
            var cap = book.cap
            while !place(partition, in: &book, cap: cap) {
                cap += 1
                precondition(cap <= replicas.count, "no leader fits partition \(partition) under \(cap)")
            }
        }
        let floor = members.isEmpty ? 0 : replicas.count / members.count
        for member in members.indices {
            while book.counts[member] < floor, raise(member, in: &book, floor: floor) {}
        }
        let leaders = book.leaders.enumerated().map { partition, leader in
            guard let leader else { preconditionFailure("partition \(partition) has no leader") }
            return leader
        }
        for (partition, leader) in leaders.enumerated() {
            precondition(replicas[partition].contains(leader), "leader of \(partition) is not a replica")
        }
        return leaders
    }

    /// Gives `partition` a leader that leads fewer than `cap` partitions: its previous leader, else the
    /// replica leading the fewest (the highest weight among equals), else by shifting leaderships along the
    /// shortest chain that ends at a replica with room.
    /// - Returns: `false` if no replica can be given room under `cap`.
    private func place(_ partition: Int, in book: inout LeaderBook, cap: Int) -> Bool {
        if let leader = previousLeaders[partition], book.counts[leader] < cap {
            book.assign(partition, to: leader)
            return true
        }
        var best: (member: Int, count: Int, weight: UInt64)? = nil
        for member in replicas[partition] where book.counts[member] < cap {
            let weight = Placement.weight(partition: partition, node: members[member])
            if let current = best, (current.count, ~current.weight) <= (book.counts[member], ~weight) { continue }
            best = (member, book.counts[member], weight)
        }
        if let best {
            book.assign(partition, to: best.member)
            return true
        }
        return augment(partition, in: &book, cap: cap)
    }

    /// Breadth-first search for the shortest chain partition → replica a → a partition a leads → another
    /// replica b → … that ends at a member leading fewer than `cap`; then shifts each leadership one step
    /// along it, so every member on the chain keeps its count except the last, which gains one.
    private func augment(_ root: Int, in book: inout LeaderBook, cap: Int) -> Bool {
        // How a member was reached: by moving `partition`'s leadership to it from `from` (nil for the root).
        var reachedBy: [(partition: Int, from: Int?)?] = Array(repeating: nil, count: members.count)
        var queue: [Int] = []
        for member in replicas[root] {
            reachedBy[member] = (root, nil)
            queue.append(member)
        }
        var head = 0
        while head < queue.count {
            let member = queue[head]
            head += 1
            if book.counts[member] < cap {
                var current: Int? = member
                while let node = current, let step = reachedBy[node] {
                    if let from = step.from { book.unassign(step.partition, from: from) }
                    book.assign(step.partition, to: node)
                    current = step.from
                }
                return true
            }
            for led in book.led[member] {
                for next in replicas[led] where reachedBy[next] == nil {
                    reachedBy[next] = (led, member)
                    queue.append(next)
                }
            }
        }
        return false
    }

    /// Breadth-first search for the shortest chain: `member` takes a partition it replicates from its
    /// leader a, a takes one it replicates from its leader b, … until a leader that leads more than
    /// `floor` gives one up. Every member on the chain keeps its count except the first, which gains
    /// one, and the last, which loses one.
    /// - Returns: `false` if no such chain exists.
    private func raise(_ start: Int, in book: inout LeaderBook, floor: Int) -> Bool {
        // How a member was reached: it gives `partition`'s leadership to `to` (nil for the start).
        var reachedBy: [(partition: Int, to: Int)?] = Array(repeating: nil, count: members.count)
        var visited = Array(repeating: false, count: members.count)
        visited[start] = true
        var queue = [start]
        var head = 0
        while head < queue.count {
            let member = queue[head]
            head += 1
            if member != start, book.counts[member] > floor {
                var current = member
                while let step = reachedBy[current] {
                    book.unassign(step.partition, from: current)
                    book.assign(step.partition, to: step.to)
                    current = step.to
                }
                return true
            }
            for partition in replicas.indices where replicas[partition].contains(member) {
                guard let leader = book.leaders[partition], !visited[leader] else { continue }
                visited[leader] = true
                reachedBy[leader] = (partition, member)
                queue.append(leader)
            }
        }
        return false
    }

    /// Orders each partition's replicas with its leader first and the others in their current order.
    func ordered(leaders: [Int]) -> [[NodeID]] {
        precondition(leaders.count == replicas.count, "one leader per partition")
        return replicas.indices.map { partition in
            let leader = leaders[partition]
            return [members[leader]] + replicas[partition].filter { $0 != leader }.map { members[$0] }
        }
    }
}

/// Who leads what while leaders are chosen: each partition's leader, and each member's led partitions.
private struct LeaderBook {
    /// The bound most members should stay within, `⌈partitions / members⌉`.
    let cap: Int
    /// Each partition's leader (a member index), once chosen.
    var leaders: [Int?]
    /// The partitions each member leads.
    var led: [[Int]]
    /// How many partitions each member leads (`led[member].count`).
    var counts: [Int]

    init(partitions: Int, members: Int, cap: Int) {
        self.cap = cap
        self.leaders = Array(repeating: nil, count: partitions)
        self.led = Array(repeating: [], count: members)
        self.counts = Array(repeating: 0, count: members)
    }

    mutating func assign(_ partition: Int, to member: Int) {
        precondition(leaders[partition] == nil, "partition \(partition) already has a leader")
        leaders[partition] = member
        led[member].append(partition)
        counts[member] += 1
    }

    mutating func unassign(_ partition: Int, from member: Int) {
        precondition(leaders[partition] == member, "partition \(partition) is not led by member \(member)")
        leaders[partition] = nil
        led[member].removeAll { $0 == partition }
        counts[member] -= 1
    }
}
