import CairnCore
import CairnRaft

extension Simulation {
    // MARK: Network

    /// Puts a message on the network: maybe lost, maybe duplicated, maybe held back so later ones
    /// overtake it (all only in the safety phase), otherwise delivered after the link's delay.
    func send(_ message: RaftMessage, from: Int, to: Int) {
        if isFaulty && networkPrng.chance(options.dropPermille) {
            faults.add(.drop)
            trace.record(nowMs, "n\(from + 1)->n\(to + 1) LOST \(message)")
            return
        }
        var delay = networkPrng.within(options.messageDelayMsMin...options.messageDelayMsMax)
        if isFaulty && networkPrng.chance(options.reorderPermille) {
            faults.add(.reorder)
            delay += networkPrng.within(1...options.reorderDelayMsMax)
        }
        queue.push(.deliver(from: from, to: to, message: message), at: nowMs + delay)
        if isFaulty && networkPrng.chance(options.duplicatePermille) {
            faults.add(.duplicate)
            let again = networkPrng.within(
                options.messageDelayMsMin...(options.messageDelayMsMax + options.reorderDelayMsMax))
            queue.push(.deliver(from: from, to: to, message: message), at: nowMs + again)
        }
    }

    /// Hands a message to its target, unless the target is down or the link is cut now.
    func deliver(_ message: RaftMessage, from: Int, to: Int) {
        let node = nodes[to]
        guard node.isUp, !blocked[from * nodes.count + to] else { return }
        trace.record(nowMs, "n\(from + 1)->n\(to + 1) \(message)")
        step(node, .received(message, from: NodeID(UInt64(from + 1))))
    }

    func setBlocked(_ from: Int, _ to: Int, _ isBlocked: Bool) {
        guard blocked[from * nodes.count + to] != isBlocked else { return }
        blocked[from * nodes.count + to] = isBlocked
        trace.record(nowMs, "link n\(from + 1)->n\(to + 1) \(isBlocked ? "cut" : "restored")")
    }

    // MARK: Partitions

    /// Starts a partition (if none is on): symmetric, one-way, or swizzle-clogged, and schedules its end
    /// and the next one.
    func startPartition() {
        guard isFaulty, let mean = options.partitionIntervalMsMean else { return }
        let count = nodes.count
        let durationMs = faultPrng.within(1...options.partitionDurationMsMax)
        if !isPartitioned {
            isPartitioned = true
            if faultPrng.chance(options.swizzlePermille) {
                swizzleClog(durationMs: durationMs)
            } else if faultPrng.chance(options.asymmetricPermille) {
                faults.add(.asymmetricPartition)
                let node = faultPrng.below(count)
                let isDeaf = faultPrng.chance(500)
                trace.record(nowMs, "PARTITION one-way: n\(node + 1) \(isDeaf ? "hears nobody" : "is heard by nobody")")
                for other in 0..<count where other != node {
                    if isDeaf { setBlocked(other, node, true) } else { setBlocked(node, other, true) }
                }
                queue.push(.heal, at: nowMs + durationMs)
            } else {
                faults.add(.partition)
                let side = randomMinority()
                trace.record(nowMs, "PARTITION \(side.map { "n\($0 + 1)" }) | the rest")
                for inside in side {
                    for outside in 0..<count where !side.contains(outside) {
                        setBlocked(inside, outside, true)
                        setBlocked(outside, inside, true)
                    }
                }
                queue.push(.heal, at: nowMs + durationMs)
            }
        }
        queue.push(.partition, at: nowMs + durationMs + faultPrng.within(0...(2 * mean)))
    }

    /// Cuts every link of a random set of nodes one at a time, then restores them one at a time in
    /// another random order (FoundationDB's swizzle-clog): the group passes through many partial
    /// connectivity states on the way down and on the way up.
    private func swizzleClog(durationMs: UInt64) {
        faults.add(.swizzle)
        let side = randomMinority()
        var links: [(Int, Int)] = []
        for inside in side {
            for other in 0..<nodes.count where other != inside {
                links.append((inside, other))
                if !side.contains(other) { links.append((other, inside)) }
            }
        }
        trace.record(nowMs, "SWIZZLE \(side.map { "n\($0 + 1)" }): \(links.count) links, one at a time")
        let gapMs = UInt64(faultPrng.within(5...50))
        shuffle(&links)
        for (offset, link) in links.enumerated() {
            queue.push(.clog(from: link.0, to: link.1), at: nowMs + UInt64(offset) * gapMs)
        }
        shuffle(&links)
        let healStart = nowMs + UInt64(links.count) * gapMs + durationMs
        for (offset, link) in links.enumerated() {
            queue.push(.unclog(from: link.0, to: link.1), at: healStart + UInt64(offset) * gapMs)
        }
        queue.push(.heal, at: healStart + UInt64(links.count) * gapMs)
    }

    /// One to (nodes − 1) / 2 distinct nodes, sorted; the leader among them if the leader is targeted.
    private func randomMinority() -> [Int] {
        var all = Array(0..<nodes.count)
        shuffle(&all)
        if let leader = targetedLeader(), let position = all.firstIndex(of: leader) { all.swapAt(0, position) }
        return all.prefix(1 + faultPrng.below((nodes.count - 1) / 2)).sorted()
    }

    /// The position of the live leader of the highest term, if this fault targets the leader.
    private func targetedLeader() -> Int? {
        guard faultPrng.chance(options.leaderTargetPermille) else { return nil }
        let leaders = nodes.filter { $0.core?.role == .leader }
        return leaders.max { ($0.core?.term ?? 0) < ($1.core?.term ?? 0) }?.position
    }

    private func shuffle<T>(_ items: inout [T]) {
        guard items.count > 1 else { return }
        for index in stride(from: items.count - 1, to: 0, by: -1) {
            items.swapAt(index, faultPrng.below(index + 1))
        }
    }

    func healAll() {
        for from in 0..<nodes.count {
            for to in 0..<nodes.count { setBlocked(from, to, false) }
        }
        if isPartitioned { trace.record(nowMs, "HEAL all links") }
        isPartitioned = false
    }

    // MARK: Crashes

    /// Crashes a random live node (or the leader), keeping a majority up so that the group can make
    /// progress; or, in a power failure, every node at once. Schedules restarts and the next crash.
    func crashRandomNode() {
        guard isFaulty, let mean = options.crashIntervalMsMean else { return }
        let count = nodes.count
        if faultPrng.chance(options.powerFailurePermille) {
            faults.add(.powerFailure)
            trace.record(nowMs, "POWER FAILURE: every node down")
            for node in nodes where node.isUp {
                crash(node)
                queue.push(.restart(node: node.position), at: nowMs + faultPrng.within(1...options.downtimeMsMax))
            }
        } else if count - nodes.filter(\.isUp).count < (count - 1) / 2 {
            let up = nodes.filter(\.isUp).map(\.position)
            let position = targetedLeader() ?? up[faultPrng.below(up.count)]
            crash(nodes[position])
            queue.push(.restart(node: position), at: nowMs + faultPrng.within(1...options.downtimeMsMax))
        }
        queue.push(.crash, at: nowMs + faultPrng.within(1...(2 * mean)))
    }

    /// The BUGGIFY-style crash right after a vote: the node reboots almost at once, so a candidate's
    /// request that was in flight may reach it again in the same term.
    func crashAfterVote(_ node: SimNode, downtimeMs: UInt64) {
        guard isFaulty, node.isUp, nodes.count - nodes.filter(\.isUp).count < (nodes.count - 1) / 2 else { return }
        crash(node, kind: .crashAfterVote)
        queue.push(.restart(node: node.position), at: nowMs + downtimeMs)
    }

    // MARK: Liveness

    /// Ends the safety phase: no more faults, every link restored, every node up, and each client's next
    /// operation a write that must succeed.
    func startLiveness() {
        isFaulty = false
        livenessStartMs = nowMs
        trace.record(nowMs, "LIVENESS: faults stop, links heal, crashed nodes restart")
        healAll()
        for node in nodes where !node.isUp { restart(node) }
        for client in clients { client.isFinal = true }
        queue.push(.livenessCheck, at: nowMs + SwarmOptions.tickMs)
    }

    /// Converged: every client got its final write acknowledged, a leader exists, and every node applied
    /// every acknowledged proposal. Past the bound without that is a liveness failure.
    func checkLiveness() {
        let isClientsDone = clients.allSatisfy(\.isDone)
        let leader = nodes.first { $0.core?.role == .leader }
        let lagging = nodes.filter { $0.appliedIndex < acknowledgedIndexMax }
        if isClientsDone && leader != nil && lagging.isEmpty {
            convergedMs = nowMs
            trace.record(nowMs, "CONVERGED: leader n\(leader?.id ?? 0), every node applied \(acknowledgedIndexMax)")
            return
        }
        if nowMs >= livenessStartMs + UInt64(livenessTicksMax) * SwarmOptions.tickMs {
            var problems: [String] = []
            if leader == nil { problems.append("no leader") }
            let waiting = clients.filter { !$0.isDone }.map { "\($0.id)" }
            if !waiting.isEmpty { problems.append("clients \(waiting.joined(separator: ",")) got no write through") }
            for node in lagging {
                problems.append("node \(node.id) applied \(node.appliedIndex) < acknowledged \(acknowledgedIndexMax)")
            }
            checker.report(
                .liveness, timeMs: nowMs,
                "after \(livenessTicksMax) ticks of a healed cluster: " + problems.joined(separator: "; "))
            return
        }
        queue.push(.livenessCheck, at: nowMs + SwarmOptions.tickMs)
    }
}
