import CairnCore
import CairnPlacement
import CairnRESP
import CairnRaft
import CairnStorage

extension NodeCore {
    static let identityKey = StorageLayout.metaKey("node-id")
    static let mapKey = StorageLayout.metaKey("cluster-map")
    static let metaStateKey = StorageLayout.metaKey("meta-state")

    /// Reads this node's identity and map from the store, or founds a cluster, or prepares to join.
    mutating func startCluster() throws(StorageError) {
        if let bytes = try keyspace.store.get(Self.identityKey) {
            guard bytes.count == 8 else {
                throw .corruptRecord(key: Self.identityKey, reason: "\(bytes.count) bytes, expected 8")
            }
            var reader = ByteReader(bytes)
            identity = NodeID(rawValue: (try? reader.readUInt64("node id")) ?? 0)
            map = try Self.readMap(keyspace.store, Self.mapKey)
            metaState = try Self.readMap(keyspace.store, Self.metaStateKey)
            for group in try hostedGroupIDs() {
                try openGroup(group, partition: group == Self.metaGroup ? nil : Int(group.rawValue - 2))
            }
            try loadRemovals()
            return
        }
        guard config.join.isEmpty else { return }  // Joins on the first ticks.
        // Found a cluster: node 1 alone, voter of the meta group and of every partition.
        let founder = NodeID(rawValue: 1)
        identity = founder
        let founding = ClusterMap.founding(
            clusterID: config.seed | 1, founder: founder, addresses: config.addresses,
            partitionCount: config.partitionCount, replicas: config.replicas)
        adoptIdentity(founder, map: founding)
        // The meta state machine starts when the `found` entry applies (see `proposeFounding`).
        let voters = ConfigurationState(voters: [founder])
        createGroup(Self.metaGroup, partition: nil, configuration: voters)
        for partition in 0..<founding.partitionCount {
            createGroup(Self.group(ofPartition: partition), partition: partition, configuration: voters)
        }
    }

    static func readMap(_ store: any KVStore, _ key: [UInt8]) throws(StorageError) -> ClusterMap? {
        guard let bytes = try store.get(key) else { return nil }
        do {
            return try ClusterMap.decode(bytes)
        } catch {
            throw .corruptRecord(key: key, reason: "cluster map: \(error)")
        }
    }

    /// The groups whose Raft state this store holds.
    func hostedGroupIDs() throws(StorageError) -> [GroupID] {
        var found: [GroupID] = []
        var start: [UInt8] = [StorageLayout.raftPrefix]
        while true {
            let next = try keyspace.store.scan(from: start, to: [StorageLayout.raftPrefix + 1], limit: 1)
            guard let key = next.first?.key, key.count >= 9 else { break }
            var reader = ByteReader(Array(key[1..<9]))
            let group = GroupID(rawValue: (try? reader.readUInt64("group")) ?? 0)
            found.append(group)
            var writer = ByteWriter(capacity: 9)
            writer.write(StorageLayout.raftPrefix)
            writer.write(group.rawValue &+ 1)
            start = writer.bytes
            if group.rawValue == UInt64.max { break }
        }
        return found
    }

    /// Saves the node's identity and map (in the open batch) and starts using them.
    mutating func adoptIdentity(_ id: NodeID, map newMap: ClusterMap) {
        identity = id
        var writer = ByteWriter(capacity: 8)
        writer.write(id.rawValue)
        keyspace.appendRaw([.put(key: Self.identityKey, value: writer.bytes)])
        adopt(newMap)
    }

    /// Starts using `newMap` if it is newer than the one this node has.
    mutating func adopt(_ newMap: ClusterMap) {
        if let map,
            map.clusterID != newMap.clusterID || map.epoch >= newMap.epoch
                || map.partitionCount != newMap.partitionCount
        {
            return
        }
        map = newMap
        keyspace.appendRaw([.put(key: Self.mapKey, value: newMap.encoded())])
        hostedGroupsChanged = true
        peerAddressesChanged = true
    }

    // MARK: Peer input

    mutating func receive(_ envelope: PeerEnvelope, into output: inout NodeOutput) {
        if let map, envelope.clusterID != 0, envelope.clusterID != map.clusterID {
            stats.peerMessagesRefused += 1
            return
        }
        let sender = envelope.from
        if sender.rawValue != 0 { peerLastHeard[sender] = ticks }
        if let map, sender.rawValue != 0, envelope.epoch < map.epoch, shouldSendMap(to: sender) {
            if let record = map.node(sender), record.state == .removed {
                // No longer a peer (no link by ID): it learns of its removal at its address.
                enqueue(.map(map), to: record.addresses.peer)
            } else {
                enqueue(.map(map), to: sender)
            }
        }
        if let map, envelope.epoch > map.epoch, sender.rawValue != 0, shouldSendMap(to: sender) {
            enqueue(.mapRequest, to: sender)
        }
        for message in envelope.messages {
            switch message {
            case .raft(let raft):
                guard sender.rawValue != 0, identity != nil else { continue }
                // Terms and indexes near the top of their range would overflow inside the core (a
                // term is only ever incremented by one): a peer sending them is broken or hostile.
                guard raft.term.rawValue < UInt64.max / 2 else {
                    stats.peerMessagesRefused += 1
                    continue
                }
                if case .installSnapshot(let chunk) = raft.kind {
                    stats.snapshotBytesReceived += UInt64(chunk.data.count)
                }
                if groups[raft.group] != nil {
                    stepGroup(raft.group, .received(raft, from: sender), into: &output)
                } else {
                    stats.peerMessagesRefused += 1
                }
            case .forward(let request):
                guard sender.rawValue != 0 else { continue }
                receiveForward(request, from: sender, into: &output)
            case .forwardReply(let id, let outcome):
                receiveForwardReply(id: id, outcome, into: &output)
            case .join(let addresses):
                receiveJoin(addresses, into: &output)
            case .joined(let id, let newMap):
                guard identity == nil else { continue }
                output.logs.append(
                    NodeLog(.info, "joined the cluster", [("node", "\(id)"), ("epoch", "\(newMap.epoch)")]))
                adoptIdentity(id, map: newMap)
            case .map(let newMap):
                // Before it is admitted a node takes a map only from its `joined` answer.
                if identity != nil { adopt(newMap) }
            case .mapRequest:
                if let map, sender.rawValue != 0 { enqueue(.map(map), to: sender) }
            case .membersQuery(let group):
                guard sender.rawValue != 0, let hosted = groups[group], hosted.isLeader,
                    hosted.raft.isConfigurationCommitted
                else { continue }
                enqueue(
                    .members(
                        group, hosted.raft.configuration.members,
                        configurationIndex: hosted.raft.configurationEntryIndex), to: sender)
            case .quiesce(let group, let term):
                guard sender.rawValue != 0 else { continue }
                receiveQuiesce(group, term: term, from: sender)
            case .metaRequest(let command):
                guard sender.rawValue != 0, identity != nil else {
                    stats.peerMessagesRefused += 1
                    continue
                }
                receiveMetaRequest(command, from: sender, into: &output)
            case .members(let group, let members, let configurationIndex):
                // An answer older than the configuration this copy knows (it was added back since the
                // question, and its data may already count at the leader) must not drop it.
                guard let me = identity, let map, let hosted = groups[group], !members.contains(me),
                    !Self.target(of: hosted, in: map).contains(me),
                    hosted.raft.configurationEntryIndex <= configurationIndex
                else { continue }
                output.logs.append(
                    NodeLog(.info, "dropping a replica moved away", [("group", "\(group)"), ("members", "\(members)")]))
                dropGroup(group, into: &output)
            }
        }
    }

    /// Sends a map correction to one peer at most every few ticks, however many envelopes show it behind.
    mutating func shouldSendMap(to peer: NodeID) -> Bool {
        if let last = mapSentAt[peer], ticks < last + 10 { return false }
        mapSentAt[peer] = ticks
        return true
    }

    // MARK: Joining

    /// A node asks to join: the meta leader admits it through the meta group; others pass it on.
    mutating func receiveJoin(_ addresses: NodeAddresses, into output: inout NodeOutput) {
        guard let meta = groups[Self.metaGroup] else {
            if let leader = metaLeaderGuess(), leader != identity { enqueue(.join(addresses), to: leader) }
            return
        }
        guard meta.isLeader, metaState != nil else {
            if let leader = meta.raft.leader, leader != identity { enqueue(.join(addresses), to: leader) }
            return
        }
        proposeMeta(.addNode(addresses), origin: .joiner(addresses), into: &output)
    }

    /// Proposes a change to the cluster map on this node, the meta leader; `origin` hears the outcome.
    mutating func proposeMeta(_ command: MetaCommand, origin: Origin, into output: inout NodeOutput) {
        let request = RequestID(rawValue: nextRequestID())
        groups[existing: Self.metaGroup].proposals[request] = [
            Waiter(
                origin: origin, arguments: [], command: CommandTable.unknownIndex, protocolVersion: .resp2,
                startedAt: now.monotonicNanoseconds, deadline: now.unixMilliseconds + 10_000)
        ]
        stepGroup(Self.metaGroup, .propose(command.encoded(), request: request), into: &output)
    }

    func metaLeaderGuess() -> NodeID? {
        groups[Self.metaGroup]?.raft.leader ?? map?.metaVoters.first
    }

    /// While the node has no identity, it asks the next seed to admit it every 20 ticks (200 ms).
    mutating func joinIfNeeded() {
        guard identity == nil, !config.join.isEmpty, ticks % 20 == 1 else { return }
        let seed = config.join[Int((ticks / 20) % UInt64(config.join.count))]
        enqueue(.join(config.addresses), to: seed)
    }

    // MARK: The meta group's state machine

    mutating func applyMeta(_ bytes: [UInt8], into output: inout NodeOutput) -> MetaReply? {
        let command: MetaCommand
        do {
            command = try MetaCommand.decode(bytes)
        } catch {
            output.logs.append(NodeLog(.error, "undecodable meta entry skipped", [("error", "\(error)")]))
            return nil
        }
        if case .found(let founding) = command {
            if metaState == nil {
                metaState = founding
                keyspace.appendRaw([.put(key: Self.metaStateKey, value: founding.encoded())])
            }
            return .done
        }
        guard var state = metaState else {
            output.logs.append(
                NodeLog(.error, "meta entry before the founding map; skipped", [("entry", "\(command)")]))
            return nil
        }
        let reply = state.apply(command)
        metaState = state
        keyspace.appendRaw([.put(key: Self.metaStateKey, value: state.encoded())])
        if state.epoch > (map?.epoch ?? 0) {
            adopt(state)
            if groups[Self.metaGroup]?.isLeader == true {
                for node in state.memberNodes where node.id != identity { enqueue(.map(state), to: node.id) }
                // A node just removed is no peer any more (no link by ID): it hears of it at its address.
                if case .removeNode(let id) = command, id != identity, let removed = state.node(id) {
                    enqueue(.map(state), to: removed.addresses.peer)
                }
            }
            output.logs.append(
                NodeLog(.info, "cluster map changed", [("epoch", "\(state.epoch)"), ("change", "\(command)")]))
        }
        return reply
    }

    /// A meta leader whose state machine has not started yet proposes the founding map (only the
    /// founder's first leadership does this in practice: every later leader has applied it).
    mutating func proposeFounding(into output: inout NodeOutput) {
        guard metaState == nil, let map, let meta = groups[Self.metaGroup], meta.isLeader, meta.proposals.isEmpty,
            meta.appended.isEmpty, ticks % 10 == 0
        else { return }
        proposeMeta(.found(map), origin: .none, into: &output)
    }

    // MARK: Dead nodes

    /// On the meta leader: marks a node dead once nothing was heard from it for `config.deadNodeTicks`
    /// (placement then rebuilds its replicas on live nodes), and alive again once it is heard from. One
    /// change at a time. The clock starts when this node became meta leader: a new leader has not had
    /// the chance to hear from anyone yet.
    mutating func watchLiveness(into output: inout NodeOutput) {
        guard config.deadNodeTicks > 0, let state = metaState, let me = identity,
            groups[Self.metaGroup]?.isLeader == true
        else {
            metaLeaderSince = nil
            return
        }
        let since = metaLeaderSince ?? ticks
        metaLeaderSince = since
        guard ticks % 10 == 7, groups[existing: Self.metaGroup].proposals.isEmpty,
            groups[existing: Self.metaGroup].appended.isEmpty
        else { return }
        let timeout = UInt64(config.deadNodeTicks)
        let silent = state.nodes.filter {
            $0.state == .active && $0.id != me && ticks > max(peerLastHeard[$0.id] ?? 0, since) + timeout
        }
        if let back = state.nodes.first(where: { $0.state == .dead && isAlive($0.id) }) {
            output.logs.append(
                NodeLog(.info, "a dead node is back; placing replicas on it again", [("node", "\(back.id)")]))
            proposeMeta(.markAlive(back.id), origin: .none, into: &output)
        } else if let dead = silent.first, silent.count * 2 < state.activeNodes.count {
            // Not when half the active nodes are silent: more likely this node is cut off than they dead.
            output.logs.append(
                NodeLog(
                    .warn, "node marked dead; rebuilding its replicas on live nodes",
                    [
                        ("node", "\(dead.id)"),
                        ("silent_seconds", "\((ticks - max(peerLastHeard[dead.id] ?? 0, since)) / 100)"),
                    ]))
            proposeMeta(.markDead(dead.id), origin: .none, into: &output)
        }
    }

    // MARK: Hosting groups

    /// For each copy of a partition the map moved away from this node, asks the partition's leader
    /// whether a committed configuration still includes this node (it never hears of its own removal
    /// otherwise: the leader stops writing to removed members).
    mutating func queryMovedAwayGroups() {
        guard let map, let me = identity, ticks % 50 == 25 else { return }
        for (group, hosted) in groups.entries where !hosted.isLeader {
            let target = Self.target(of: hosted, in: map)
            guard !target.contains(me) else { continue }
            for node in target where node != me { enqueue(.membersQuery(group), to: node) }
        }
    }

    /// The replicas the map wants for a hosted group: its partition's placement, or the meta voters.
    static func target(of hosted: HostedGroup, in map: ClusterMap) -> [NodeID] {
        hosted.partition.map { map.placement[$0] } ?? map.metaVoters
    }

    /// Creates members for the partitions the map places here, and drops those it moved away and whose
    /// group removed this node.
    mutating func syncHostedGroups(into output: inout NodeOutput) {
        guard hostedGroupsChanged, let map, let me = identity else { return }
        hostedGroupsChanged = false
        let wanted =
            [(Self.metaGroup, nil as Int?, map.metaVoters.contains(me))]
            + (0..<map.partitionCount).map { (Self.group(ofPartition: $0), $0, map.placement[$0].contains(me)) }
        for (group, partition, placed) in wanted {
            if groups[group] == nil, placed {
                // The keys of an earlier copy here must be gone first (`PartitionRemoval`).
                if let partition, removals[partition] != nil {
                    hostedGroupsChanged = true  // Checked again next turn.
                    continue
                }
                // A new member waits until the dropping of an earlier one here is durable: its bootstrap
                // goes straight to the store, and a crash must not find it next to the old member's
                // data (which a new member, having applied nothing, would apply its log onto again).
                if let dropped = droppedGroupBatches[group] {
                    guard dropped <= keyspace.durableThrough else {
                        hostedGroupsChanged = true  // Checked again next turn.
                        continue
                    }
                    droppedGroupBatches[group] = nil
                }
                createGroup(group, partition: partition, configuration: .empty)
            } else if let hosted = groups[group], !placed, !hosted.raft.configuration.isMember(me),
                hosted.raft.isConfigurationCommitted, hosted.raft.lastAppliedIndex > 0
            {
                dropGroup(group, into: &output)
            }
        }
    }

    /// Deletes this node's copy of a group that was moved away (the group no longer includes it): a
    /// partition's data, or the meta group's state machine.
    mutating func dropGroup(_ group: GroupID, into output: inout NodeOutput) {
        guard let hosted = groups.removeValue(forKey: group) else { return }
        groupOrder = []
        for pending in hosted.appended.values {
            for waiter in pending.waiters {
                finish(
                    waiter, error: "TRYAGAIN this replica was moved away; the write may or may not be applied",
                    into: &output)
            }
        }
        let range = KVRaftLog.range(of: group)
        keyspace.appendRaw([.deleteRange(start: range.start, end: range.end), .delete(key: Self.appliedKey(group))])
        appliedGroups.insert(group)  // Its bucket is written again without it.
        droppedGroupBatches[group] = keyspace.openBatch.sequence
        guard let partition = hosted.partition else {
            // A later meta replica here starts from the founding entry again, not from this old state.
            metaState = nil
            keyspace.appendRaw([.delete(key: Self.metaStateKey)])
            return
        }
        // Commands waiting in the group were not applied here: a read or a proposal not yet appended
        // goes to the partition's leader elsewhere; an appended one has an unknown outcome.
        for waiter in hosted.unproposed + hosted.proposals.values.joined() where waiter.origin != .answered {
            parked.append((partition, waiter))
        }
        for waiter in hosted.reads.values { parked.append((partition, waiter)) }
        for read in hosted.readyReads { parked.append((partition, read.waiter)) }
        if let map {
            let slots = map.slots(of: partition)
            beginRemoval(partition, group: group, slots: Int(slots.lowerBound)...Int(slots.upperBound), into: &output)
            do {
                try replaceIdempotency(of: group, with: [])
            } catch {
                output.fatal = "could not read partition \(partition) to delete this node's copy: \(error)"
            }
        }
    }

    // MARK: Reconciling groups with the map

    /// On each group this node leads, takes one membership step towards the placement in the map:
    /// add a missing replica as a learner, promote a caught-up learner, remove a replica the map moved
    /// away, hand leadership to the preferred leader. One step at a time, each after the last settled.
    mutating func reconcile(into output: inout NodeOutput) {
        guard let map, let me = identity, ticks % 10 == 5 else { return }
        var movesStarted = movesInProgress(in: map)
        let receiving = nodesReceivingMoves(in: map)
        for (group, hosted) in groups.entries where hosted.isLeader && ticks >= hosted.lastReconfiguredTick + 20 {
            let target = Self.target(of: hosted, in: map)
            guard !target.isEmpty else { continue }
            let configuration = hosted.raft.configuration
            guard !configuration.isJoint else { continue }
            var change: MembershipChange?
            if let missing = target.first(where: { !configuration.isMember($0) }) {
                change = .addLearner(missing)
            } else if let learner = configuration.learners.first(where: { target.contains($0) }),
                let progress = hosted.raft.progress(of: learner), progress.match >= hosted.raft.commitIndex
            {
                change = .promoteLearner(learner)
            } else if let extra = configuration.learners.first(where: { !target.contains($0) }) {
                change = .remove(extra)
            } else if let extra = configuration.voters.first(where: { !target.contains($0) && !isAlive($0) })
                ?? configuration.voters.first(where: { !target.contains($0) })
            {
                // A voter that is down goes first: removing a live one while a dead one still counts
                // towards every commit can leave the group without a quorum.
                if extra == me {
                    // To a voter that takes in no moves, if there is one (see `nodesReceivingMoves`).
                    let candidates = target.filter { configuration.isVoter($0) && isAlive($0) }
                    if let next = candidates.first(where: { !receiving.contains($0) }) ?? candidates.first {
                        stepGroup(
                            group, .transferLeadership(to: next, request: RequestID(rawValue: nextRequestID())),
                            into: &output)
                        groups[group]?.lastReconfiguredTick = ticks
                    }
                    continue
                }
                change = .remove(extra)
            } else if let preferred = target.first, preferred != me, configuration.isVoter(preferred),
                isAlive(preferred), !receiving.contains(preferred),
                let progress = hosted.raft.progress(of: preferred), progress.match >= hosted.raft.commitIndex,
                ticks >= hosted.lastReconfiguredTick + 200
            {
                stepGroup(
                    group, .transferLeadership(to: preferred, request: RequestID(rawValue: nextRequestID())),
                    into: &output)
                groups[group]?.lastReconfiguredTick = ticks
                continue
            }
            if case .addLearner = change, hosted.partition != nil, !Self.isMoving(hosted, target: target) {
                // A new move: only while fewer than `maxMoves` partitions led here are moving.
                if movesStarted >= config.maxMoves { continue }
                movesStarted += 1
            }
            if let change {
                stats.membershipSteps += 1
                output.logs.append(NodeLog(.info, "membership step", [("group", "\(group)"), ("change", "\(change)")]))
                stepGroup(
                    group, .changeMembership(change, request: RequestID(rawValue: nextRequestID())), into: &output)
                groups[group]?.lastReconfiguredTick = ticks
            }
        }
    }

    /// The nodes that a partition this node holds a copy of, as a member, still moves onto: placed
    /// there by the map, not a voter there yet. Leadership is handed to such a node only once none is
    /// left (`reconcile`): a node still taking in moves writes their catch-up data in the same batches,
    /// and fsyncs, as the writes it would lead, and applies it on the same loop. In the rebalance
    /// benchmark the partitions handed to the joining node while its moves went on had a p99 of 28 ms
    /// during the join, the others 12 ms. Seen from this node's copies only; in a join every old node
    /// holds a copy of every moving partition until the move removes it, so none is missed there.
    ///
    /// A copy this node is not a member of yet (created for a move that waits for its slot) says
    /// nothing about the others and is skipped. A node whose count of moves has not fallen for
    /// `receivingStallTicks` (a move that cannot finish: a learner that never catches up, a group
    /// without a quorum) is no longer held back, so one stuck move cannot hold up leadership balance.
    mutating func nodesReceivingMoves(in map: ClusterMap) -> Set<NodeID> {
        guard let me = identity else { return [] }
        var pending: [NodeID: Int] = [:]
        for group in groups.keys {
            guard let partition = groups[existing: group].partition,
                groups[existing: group].raft.configuration.isMember(me)
            else { continue }
            for node in map.placement[partition] where !groups[existing: group].raft.configuration.isVoter(node) {
                pending[node, default: 0] += 1
            }
        }
        var receiving: Set<NodeID> = []
        for (node, count) in pending {
            if let known = movesOnto[node], count >= known.pending {
                movesOnto[node] = (count, known.since)
            } else {
                movesOnto[node] = (count, ticks)
            }
            if ticks < movesOnto[node]!.since + Self.receivingStallTicks { receiving.insert(node) }
        }
        for node in movesOnto.keys where pending[node] == nil { movesOnto.removeValue(forKey: node) }
        return receiving
    }

    /// How long a node's count of moves onto it may stay without falling before `nodesReceivingMoves`
    /// stops holding leadership back from it: 10 s (a move of one partition took about 0.5 s in the
    /// rebalance benchmark).
    static let receivingStallTicks: UInt64 = 1000

    /// Whether `node` sent this node anything within the last two election timeouts.
    func isAlive(_ node: NodeID) -> Bool {
        guard let heard = peerLastHeard[node] else { return false }
        return ticks <= heard + UInt64(2 * config.electionTicks)
    }

    // MARK: Expiry

    /// The leader of each partition proposes deleting its expired keys; followers delete them when the
    /// entry applies, so every replica removes the same keys.
    mutating func proposeExpiries(into output: inout NodeOutput) {
        guard let map else { return }
        let nowMilliseconds = now.unixMilliseconds
        let entries: [(expiresAt: Int64, key: [UInt8])]
        do {
            entries = try keyspace.expiredIndexEntries(now: nowMilliseconds, limit: Limits.expiryKeysPerTickMax)
        } catch {
            output.logs.append(NodeLog(.error, "expiry cycle failed", [("error", error.description)]))
            return
        }
        for entry in entries {
            let partition = map.partition(ofKey: entry.key)
            let group = Self.group(ofPartition: partition)
            guard let hosted = groups[group] else {
                keyspace.dropStaleExpiryEntry(entry.key, expiresAt: entry.expiresAt)
                continue
            }
            guard hosted.isLeader else {
                // Proposals made while leading may have been dropped: the next leadership proposes again.
                if !hosted.expiring.isEmpty { groups[existing: group].expiring.removeAll() }
                continue
            }
            let hashed = ByteKey(entry.key)
            guard !hosted.expiring.contains(hashed) else { continue }
            groups[existing: group].expiring.insert(hashed)
            let command = ReplicatedCommand.expire(time: nowMilliseconds, key: entry.key, expiresAt: entry.expiresAt)
            let request = RequestID(rawValue: nextRequestID())
            stepGroup(group, .propose(command.encoded(), request: request), into: &output)
        }
    }
}
