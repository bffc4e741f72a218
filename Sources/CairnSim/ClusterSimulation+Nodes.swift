import CairnCore
import CairnNode
import CairnStorage

/// One simulated node: its core (nil while crashed), its store (only what is durable), and the storage
/// batches on their way to it.
final class ClusterNode {
    /// A batch handed to the disk, with the simulated time its fsync completes.
    struct DiskItem {
        var readyMs: UInt64
        var batch: StorageBatch
    }

    let position: Int
    let config: NodeConfig
    /// What the node reads: what is durable (plus, with the bug `ackBeforeFsync`, what is not yet).
    var store = MemoryKVStore()
    /// With the bug `ackBeforeFsync` only: what is durable, which a crash falls back to.
    let durableStore = MemoryKVStore()
    var core: NodeCore?
    /// Bumped by every crash, so that completions and envelopes meant for an earlier life are dropped.
    var incarnation = 0
    var inFlight: [DiskItem] = []
    /// Batches written without an fsync (`StorageBatch.needsSync` false) since the last one with: what
    /// each key they touched held before them, and how many there were. A crash puts those values back
    /// (a power cut loses writes not yet fsync'd); the next synced batch makes them durable.
    var unsyncedUndo: [[UInt8]: [UInt8]?] = [:]
    var unsyncedBatches = 0
    /// When the last batch handed over becomes durable; the next one becomes durable no earlier.
    var diskClearMs: UInt64 = 0
    /// Where its peers listen, as its core last said (`NodeOutput.peerAddresses`).
    var peerAddresses: [NodeID: String] = [:]

    var isUp: Bool { core != nil }

    init(position: Int, config: NodeConfig) {
        self.position = position
        self.config = config
    }
}

extension ClusterSimulation {
    // MARK: Stepping a node

    /// Feeds one input to a live node, ends its loop turn, and carries out both outputs.
    /// Steps node `position` with `input`, then ends its loop turn. Returns the input's output.
    @discardableResult
    func step(_ position: Int, _ input: NodeInput) -> NodeOutput? {
        guard nodes[position].core != nil else { return nil }
        steps += 1
        let output = nodes[position].core!.step(input, now: now)
        carryOut(output, of: position)
        guard nodes[position].core != nil else { return output }
        let ended = nodes[position].core!.step(.turnEnded, now: now)
        carryOut(ended, of: position)
        return output
    }

    /// Carries out an output in its documented order: storage, envelopes, replies, logs, fatal.
    func carryOut(_ output: NodeOutput, of position: Int) {
        let node = nodes[position]
        // As the server does: the view is taken first (before this output's batches), and the snapshot
        // comes back later while the node goes on applying writes (a fixed delay: no draw, so the
        // random streams stay as they were).
        for read in output.snapshotReads {
            queue.push(
                .snapshotBuilt(node: position, incarnation: node.incarnation, read.build(from: node.store.readView())),
                at: nowMs + Self.snapshotBuildMs)
        }
        for batch in output.writes { write(batch, at: node) }
        // As the server does: the core names peers by ID, and says where they listen when that changes.
        if let addresses = output.peerAddresses { node.peerAddresses = addresses }
        // Outputs list envelopes and replies in the order of dictionaries inside the core; a fixed
        // order here keeps the delays drawn for them independent of hashing.
        let sends = output.peerSends.enumerated().sorted {
            ($0.element.to.sortKey, $0.offset) < ($1.element.to.sortKey, $1.offset)
        }
        for (_, send) in sends {
            let target: Int?
            switch send.to {
            case .node(let id): target = node.peerAddresses[id].flatMap(nodeListening(at:))
            case .address(let address): target = nodeListening(at: address)
            }
            if let target { self.send(send.payload, from: position, to: target) }
        }
        let replies = output.replies.enumerated().sorted {
            ($0.element.client, $0.offset) < ($1.element.client, $1.offset)
        }
        for (_, reply) in replies {
            guard let owner = connectionOwners[reply.client.rawValue] else { continue }
            let delay = networkPrng.within(options.messageDelayMsMin...options.messageDelayMsMax)
            queue.push(.reply(client: owner, connection: reply.client, bytes: reply.bytes), at: nowMs + delay)
        }
        for log in output.logs where log.level >= .info {
            trace.record(
                nowMs,
                "n\(position + 1) \(log.level) \(log.message) \(log.fields.map { "\($0)=\($1)" }.joined(separator: " "))"
            )
        }
        for log in output.logs where log.message == NodeCore.lostReplyMessage {
            // Every command must be answered by its deadline; the node's watchdog caught one that was not.
            report(
                .liveness,
                "n\(position + 1): \(log.message) (\(log.fields.map { "\($0)=\($1)" }.joined(separator: " ")))")
        }
        if let fatal = output.fatal {
            report(.recovery, "node \(position + 1) stopped: \(fatal)")
        }
        if bug == .ackBeforeFsync, let last = output.writes.last {
            // The bug: the batches are written (visible to reads) and reported durable before their fsync.
            apply(output.writes, to: node.store)
            step(
                position,
                .persisted(through: last.sequence, durationNanoseconds: 0, synced: true, batches: 1, mutations: 0))
        }
    }

    /// How long the simulated snapshot thread takes to read a partition.
    static let snapshotBuildMs: UInt64 = 30

    /// The node listening at a peer address, if any.
    func nodeListening(at address: String) -> Int? {
        nodes.firstIndex { $0.config.addresses.peer == address }
    }

    // MARK: Disk

    /// Hands a batch to the node's disk: durable after a random latency, never before an earlier batch.
    /// A batch that needs no fsync is written as soon as the batches before it are.
    func write(_ batch: StorageBatch, at node: ClusterNode) {
        let latency =
            options.diskLatencyMsMax == 0 || !needsSync(batch) ? 0 : diskPrng.within(0...options.diskLatencyMsMax)
        let readyMs = max(nowMs + latency, node.diskClearMs)
        node.diskClearMs = readyMs
        node.inFlight.append(ClusterNode.DiskItem(readyMs: readyMs, batch: batch))
        queue.push(.diskDone(node: node.position, incarnation: node.incarnation), at: readyMs)
    }

    /// Applies the batches whose fsync completed to the store, then tells the node.
    func diskDone(_ position: Int, incarnation: Int) {
        let node = nodes[position]
        guard node.isUp, node.incarnation == incarnation else { return }
        var done: [StorageBatch] = []
        while let first = node.inFlight.first, first.readyMs <= nowMs {
            done.append(first.batch)
            node.inFlight.removeFirst()
        }
        guard let last = done.last else { return }
        if bug == .ackBeforeFsync {
            apply(done, to: node.durableStore)
            return
        }
        for batch in done {
            if needsSync(batch) {
                node.unsyncedUndo = [:]
                node.unsyncedBatches = 0
            } else {
                rememberUndo(of: batch, at: node)
                node.unsyncedBatches += 1
            }
            apply([batch], to: node.store)
        }
        let mutations = done.reduce(0) { $0 + $1.mutations.count }
        step(
            position,
            .persisted(
                through: last.sequence, durationNanoseconds: 1_000_000, synced: done.contains(where: needsSync),
                batches: done.count, mutations: mutations))
    }

    /// Whether the disk fsyncs `batch` (every batch the node says needs it, unless the bug is on).
    func needsSync(_ batch: StorageBatch) -> Bool {
        batch.needsSync && bug != .logWithoutFsync
    }

    /// Records what the keys `batch` changes hold now, unless an earlier unsynced batch recorded them.
    func rememberUndo(of batch: StorageBatch, at node: ClusterNode) {
        func remember(_ key: [UInt8]) {
            guard node.unsyncedUndo[key] == nil else { return }
            node.unsyncedUndo[key] = .some((try? node.store.get(key)) ?? nil)
        }
        for mutation in batch.mutations {
            switch mutation {
            case .put(let key, _), .delete(let key):
                remember(key)
            case .deleteRange(let start, let end):
                for (key, _) in (try? node.store.scan(from: start, to: end, limit: Int.max)) ?? [] { remember(key) }
            }
        }
    }

    func apply(_ batches: [StorageBatch], to store: MemoryKVStore) {
        do {
            try store.apply(batches, sync: true)
        } catch {
            preconditionFailure("the in-memory store cannot fail, but did: \(error)")
        }
    }

    // MARK: Network

    /// Puts an envelope on the link: maybe lost (the connection broke), otherwise delivered in order
    /// after the link's delay.
    func send(_ payload: [UInt8], from: Int, to: Int) {
        if isFaulty && networkPrng.chance(options.dropPermille) {
            faults.add(.drop)
            trace.record(nowMs, "n\(from + 1)->n\(to + 1) LOST envelope of \(payload.count) bytes")
            return
        }
        let link = from * nodes.count + to
        let delay = networkPrng.within(options.messageDelayMsMin...options.messageDelayMsMax)
        let arrivalMs = max(nowMs + delay, linkClearMs[link])
        linkClearMs[link] = arrivalMs
        queue.push(.deliver(from: from, to: to, incarnation: nodes[to].incarnation, payload: payload), at: arrivalMs)
    }

    /// Hands an envelope to its target, unless the target crashed since it was sent or the link is cut.
    func deliver(_ payload: [UInt8], from: Int, to: Int, incarnation: Int) {
        let node = nodes[to]
        guard node.isUp, node.incarnation == incarnation, !blocked[from * nodes.count + to] else { return }
        let envelope: PeerEnvelope
        do {
            envelope = try PeerEnvelope.decode(payload)
        } catch {
            report(.recovery, "node \(from + 1) sent an envelope that does not decode: \(error)")
            return
        }
        step(to, .peer(envelope))
    }

    func setBlocked(_ from: Int, _ to: Int, _ isBlocked: Bool) {
        blocked[from * nodes.count + to] = isBlocked
    }

    // MARK: Partitions

    /// Starts a partition (a random minority cut off both ways, or one node cut off one way), and
    /// schedules its end and the next one.
    func startPartition() {
        guard isFaulty, let mean = options.partitionIntervalMsMean else { return }
        let count = nodes.count
        let durationMs = faultPrng.within(1...options.partitionDurationMsMax)
        if !isPartitioned {
            isPartitioned = true
            if faultPrng.chance(options.asymmetricPermille) {
                faults.add(.asymmetricPartition)
                let node = faultPrng.below(count)
                let isDeaf = faultPrng.chance(500)
                trace.record(nowMs, "PARTITION one-way: n\(node + 1) \(isDeaf ? "hears nobody" : "is heard by nobody")")
                for other in 0..<count where other != node {
                    if isDeaf { setBlocked(other, node, true) } else { setBlocked(node, other, true) }
                }
            } else {
                faults.add(.partition)
                var all = Array(0..<count)
                for index in stride(from: count - 1, to: 0, by: -1) { all.swapAt(index, faultPrng.below(index + 1)) }
                let side = all.prefix(1 + faultPrng.below((count - 1) / 2)).sorted()
                trace.record(nowMs, "PARTITION \(side.map { "n\($0 + 1)" }) | the rest")
                for inside in side {
                    for outside in 0..<count where !side.contains(outside) {
                        setBlocked(inside, outside, true)
                        setBlocked(outside, inside, true)
                    }
                }
            }
            queue.push(.heal, at: nowMs + durationMs)
        }
        queue.push(.partition, at: nowMs + durationMs + faultPrng.within(0...(2 * mean)))
    }

    func healAll() {
        for link in blocked.indices { blocked[link] = false }
        if isPartitioned { trace.record(nowMs, "HEAL all links") }
        isPartitioned = false
    }

    // MARK: Crashes

    /// Crashes a random live node, keeping a majority up; or, in a power failure, every node at once.
    /// Schedules the restarts and the next crash.
    func crashRandomNode() {
        guard isFaulty, let mean = options.crashIntervalMsMean else { return }
        let count = nodes.count
        if faultPrng.chance(options.powerFailurePermille) {
            faults.add(.powerFailure)
            trace.record(nowMs, "POWER FAILURE: every node down")
            for node in nodes where node.isUp {
                crash(node.position)
                queue.push(.restart(node: node.position), at: nowMs + faultPrng.within(1...options.downtimeMsMax))
            }
        } else if nodes.filter({ !$0.isUp }).count < (count - 1) / 2 {
            let up = nodes.filter(\.isUp).map(\.position)
            let position = up[faultPrng.below(up.count)]
            faults.add(.crash)
            crash(position)
            queue.push(.restart(node: position), at: nowMs + faultPrng.within(1...options.downtimeMsMax))
        }
        queue.push(.crash, at: nowMs + faultPrng.within(1...(2 * mean)))
    }

    /// Stops a node as `kill -9` or a power cut would: batches not yet fsync'd are lost, and so are its
    /// client connections (their commands' outcomes are unknown).
    func crash(_ position: Int) {
        let node = nodes[position]
        guard node.isUp else { return }
        if !node.inFlight.isEmpty || node.unsyncedBatches > 0 { faults.add(.lostWrites) }
        trace.record(
            nowMs,
            "CRASH n\(position + 1) (\(node.inFlight.count) batches not yet durable and \(node.unsyncedBatches) written without fsync are lost)"
        )
        node.core = nil
        // Writes not fsync'd are gone: what they changed goes back to what it was at the last fsync.
        let undo = node.unsyncedUndo.map { key, value in
            value.map { StorageMutation.put(key: key, value: $0) } ?? .delete(key: key)
        }
        if !undo.isEmpty { apply([StorageBatch(sequence: BatchSequence(1), mutations: undo)], to: node.store) }
        node.unsyncedUndo = [:]
        node.unsyncedBatches = 0
        if bug == .ackBeforeFsync {
            // Writes that were visible but not fsync'd are gone: the node restarts on what is durable.
            node.store = MemoryKVStore()
            let all =
                (try? node.durableStore.scan(from: [], to: [UInt8](repeating: 0xFF, count: 16), limit: Int.max)) ?? []
            apply(
                [StorageBatch(sequence: BatchSequence(1), mutations: all.map { .put(key: $0.key, value: $0.value) })],
                to: node.store)
        }
        node.inFlight = []
        node.diskClearMs = 0
        node.peerAddresses = [:]
        node.incarnation += 1
        for link in 0..<nodes.count { linkClearMs[link * nodes.count + position] = nowMs }
        for client in clients.indices where clients[client].node == position {
            dropConnection(client: client, reason: "node \(position + 1) crashed")
        }
    }

    /// Starts a node (again) from what its store holds.
    func restart(_ position: Int) {
        let node = nodes[position]
        do {
            node.core = try NodeCore(config: node.config, store: node.store, now: now)
        } catch {
            report(.recovery, "node \(position + 1) could not restart from its store: \(error)")
            return
        }
        trace.record(nowMs, "START n\(position + 1) (life \(node.incarnation))")
        // Nodes tick at the same rate but out of phase, as real clocks do.
        queue.push(
            .tick(node: position, incarnation: node.incarnation),
            at: nowMs + UInt64(faultPrng.below(Int(SwarmOptions.tickMs))))
    }

    // MARK: Phases

    /// The cluster formed once every node is ready; then clients start and faults begin.
    func checkForming() {
        if nodes.allSatisfy({ $0.core?.isReady == true }) {
            formedMs = nowMs
            trace.record(nowMs, "FORMED: every node is ready; faults begin")
            isFaulty = true
            for client in 0..<options.clientCount {
                queue.push(.clientNext(client: client), at: nowMs + UInt64(clientPrng.below(100)))
            }
            if let mean = options.partitionIntervalMsMean {
                queue.push(.partition, at: nowMs + faultPrng.within(0...(2 * mean)))
            }
            if let mean = options.crashIntervalMsMean {
                queue.push(.crash, at: nowMs + faultPrng.within(0...(2 * mean)))
            }
            queue.push(.livenessStart, at: nowMs + UInt64(safetyTicks) * SwarmOptions.tickMs)
            if let position = options.decommissionPosition {
                decommissionID = nodes[position].core?.nodeID
                let at = UInt64(safetyTicks) * SwarmOptions.tickMs * UInt64(options.decommissionAtPermille) / 1000
                queue.push(.decommission, at: nowMs + at)
            }
            return
        }
        if nowMs >= UInt64(Self.formingTicksMax) * SwarmOptions.tickMs {
            let waiting = nodes.filter { $0.core?.isReady != true }.map { "n\($0.position + 1)" }
            report(.liveness, "the cluster did not form in \(Self.formingTicksMax) ticks: \(waiting) not ready")
            return
        }
        queue.push(.formingCheck, at: nowMs + SwarmOptions.tickMs)
    }

    /// Ends the fault phase: links heal, crashed nodes restart, clients stop after their current
    /// command, and the final reader starts.
    func startLiveness() {
        isFaulty = false
        livenessStartMs = nowMs
        trace.record(nowMs, "LIVENESS: faults stop, links heal, crashed nodes restart")
        healAll()
        for node in nodes where !node.isUp { restart(node.position) }
        for client in 0..<options.clientCount { clients[client].isStopping = true }
        let reader = clients.count - 1
        clients[reader].finalKeys = Array(0..<options.keyCount)
        queue.push(.clientNext(client: reader), at: nowMs + SwarmOptions.tickMs)
        queue.push(.livenessCheck, at: nowMs + SwarmOptions.tickMs)
    }

    /// Asks a random live node to decommission the chosen one, as `cairn ctl` would, and asks again every
    /// 2 s until some live node's map shows it leaving or removed (a request can be lost on its way).
    func requestDecommission() {
        guard let id = decommissionID else { return }
        let up = nodes.filter(\.isUp)
        if up.contains(where: { [.leaving, .removed].contains($0.core?.state(ofNode: id)) }) { return }
        if !up.isEmpty {
            let position = up[membershipPrng.below(up.count)].position
            faults.add(.decommission)
            let reply = step(position, .admin(.decommission(id)))?.adminReply
            trace.record(nowMs, "DECOMMISSION node \(id) via n\(position + 1): \(reply.map { "\($0.status)" } ?? "-")")
        }
        queue.push(.decommission, at: nowMs + 2000)
    }

    /// Whether node `position` knows the cluster removed it (it is then not expected to be ready).
    func isRemoved(_ position: Int) -> Bool {
        guard let core = nodes[position].core, let me = core.nodeID else { return false }
        return core.state(ofNode: me) == .removed
    }

    /// What keeps a requested decommission from being done: the node must be removed in every live
    /// node's map and host no group.
    func decommissionProblem() -> String? {
        guard let id = decommissionID, let position = options.decommissionPosition else { return nil }
        let unaware = nodes.filter { $0.isUp && $0.core?.state(ofNode: id) != .removed }.map {
            "n\($0.position + 1)"
        }
        if !unaware.isEmpty { return "decommissioned node \(id) not removed in the maps of \(unaware)" }
        if let count = nodes[position].core?.hostedGroupCount, count > 0 {
            return "decommissioned node \(id) still hosts \(count) groups"
        }
        return nil
    }

    /// One node's replica of a partition: where it is, the index it applied, and its records.
    typealias ReplicaContents = (position: Int, applied: UInt64, records: [(key: [UInt8], record: ValueRecord)])

    /// Replicas of a partition that applied the same index hold the same records: only applied entries
    /// change a replica (a key expires through an entry too), and a snapshot restores exactly what its
    /// leader held. Compared about every 100 ms of the run and once it converged, among the live replicas
    /// that applied the same index (one behind or ahead is compared with those at its own index).
    func replicaDisagreement() -> String? {
        for partition in 0..<options.partitionCount {
            var replicas: [ReplicaContents] = []
            for node in nodes where !isRemoved(node.position) {
                do {
                    guard let contents = try node.core?.replicaContents(ofPartition: partition) else { continue }
                    replicas.append((node.position, contents.applied, contents.records))
                } catch {
                    return "n\(node.position + 1) could not read partition \(partition): \(error)"
                }
            }
            for applied in Set(replicas.map(\.applied)).sorted() {
                let current = replicas.filter { $0.applied == applied }
                if let problem = Self.disagreement(current, partition: partition) { return problem }
            }
        }
        return nil
    }

    static func disagreement(
        _ current: [ReplicaContents], partition: Int
    ) -> String? {
        guard let first = current.first else { return nil }
        for other in current.dropFirst() {
            let same =
                first.records.count == other.records.count
                && zip(first.records, other.records).allSatisfy { $0.key == $1.key && $0.record == $1.record }
            if !same {
                let firstKeys = first.records.map { String(decoding: $0.key, as: UTF8.self) }.joined(separator: ",")
                let otherKeys = other.records.map { String(decoding: $0.key, as: UTF8.self) }.joined(separator: ",")
                return "replicas of partition \(partition) applied through \(first.applied) but differ: "
                    + "n\(first.position + 1) holds [\(firstKeys)], n\(other.position + 1) holds [\(otherKeys)]"
            }
        }
        return nil
    }

    /// Converged: every node is ready (but one that was removed), a decommissioned node is removed, and
    /// the final reader read every key. Past the bound without that is a liveness failure.
    func checkLiveness() {
        let notReady = nodes.filter { $0.core?.isReady != true && !isRemoved($0.position) }.map {
            "n\($0.position + 1)"
        }
        let reader = clients[clients.count - 1]
        let membership = decommissionProblem()
        if notReady.isEmpty, reader.finalKeys?.isEmpty == true, membership == nil {
            if let disagreement = replicaDisagreement() {
                report(.stateMachineSafety, disagreement)
                return
            }
            convergedMs = nowMs
            trace.record(nowMs, "CONVERGED: every node ready, every key read")
            return
        }
        if let start = livenessStartMs, nowMs >= start + UInt64(livenessTicksMax) * SwarmOptions.tickMs {
            var problems: [String] = []
            if !notReady.isEmpty { problems.append("\(notReady) not ready (a partition without a known leader)") }
            if let membership { problems.append(membership) }
            if let keys = reader.finalKeys, !keys.isEmpty {
                problems.append("final reads of \(keys.map { "k\($0)" }) did not succeed")
            }
            report(
                .liveness, "after \(livenessTicksMax) ticks of a healed cluster: " + problems.joined(separator: "; "))
            return
        }
        queue.push(.livenessCheck, at: nowMs + SwarmOptions.tickMs)
    }
}

extension PeerTarget {
    /// A fixed order of targets: nodes by ID, then addresses.
    var sortKey: String {
        switch self {
        case .node(let id): "0" + String(repeating: "0", count: 20 - String(id.rawValue).count) + String(id.rawValue)
        case .address(let address): "1" + address
        }
    }
}
