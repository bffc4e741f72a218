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
            enqueue(.map(map), to: sender)
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
                enqueue(.members(group, hosted.raft.configuration.members), to: sender)
            case .members(let group, let members):
                guard let me = identity, let hosted = groups[group], let partition = hosted.partition,
                    !members.contains(me),
                    map?.placement[partition].contains(me) == false
                else { continue }
                output.logs.append(
                    NodeLog(.info, "dropping a replica moved away", [("group", "\(group)"), ("members", "\(members)")]))
                dropGroup(group, partition: partition, into: &output)
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
        let request = RequestID(rawValue: nextRequestID())
        groups[Self.metaGroup]!.proposals[request] = Waiter(
            origin: .joiner(addresses), arguments: [], command: CommandTable.unknownIndex, protocolVersion: .resp2,
            startedAt: now.monotonicNanoseconds, deadline: now.unixMilliseconds + 10_000)
        stepGroup(Self.metaGroup, .propose(MetaCommand.addNode(addresses).encoded(), request: request), into: &output)
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
                for node in state.activeNodes where node != identity { enqueue(.map(state), to: node) }
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
        let request = RequestID(rawValue: nextRequestID())
        groups[Self.metaGroup]!.proposals[request] = Waiter(
            origin: .none, arguments: [], command: CommandTable.unknownIndex, protocolVersion: .resp2,
            startedAt: now.monotonicNanoseconds, deadline: now.unixMilliseconds + 10_000)
        stepGroup(Self.metaGroup, .propose(MetaCommand.found(map).encoded(), request: request), into: &output)
    }

    // MARK: Hosting groups

    /// For each copy of a partition the map moved away from this node, asks the partition's leader
    /// whether a committed configuration still includes this node (it never hears of its own removal
    /// otherwise: the leader stops writing to removed members).
    mutating func queryMovedAwayGroups() {
        guard let map, let me = identity, ticks % 50 == 25 else { return }
        for (group, hosted) in groups {
            guard let partition = hosted.partition, !map.placement[partition].contains(me), !hosted.isLeader else {
                continue
            }
            for node in map.placement[partition] where node != me { enqueue(.membersQuery(group), to: node) }
        }
    }

    /// Creates members for the partitions the map places here, and drops those it moved away and whose
    /// group removed this node.
    mutating func syncHostedGroups(into output: inout NodeOutput) {
        guard hostedGroupsChanged, let map, let me = identity else { return }
        hostedGroupsChanged = false
        if groups[Self.metaGroup] == nil, map.metaVoters.contains(me) {
            createGroup(Self.metaGroup, partition: nil, configuration: .empty)
        }
        for partition in 0..<map.partitionCount {
            let group = Self.group(ofPartition: partition)
            let placed = map.placement[partition].contains(me)
            if groups[group] == nil, placed {
                createGroup(group, partition: partition, configuration: .empty)
            } else if let hosted = groups[group], !placed, !hosted.raft.configuration.isMember(me),
                hosted.raft.isConfigurationCommitted, hosted.raft.lastAppliedIndex > 0
            {
                dropGroup(group, partition: partition, into: &output)
            }
        }
    }

    /// Deletes this node's copy of a partition that was moved away (its group no longer includes it).
    mutating func dropGroup(_ group: GroupID, partition: Int, into output: inout NodeOutput) {
        guard let hosted = groups.removeValue(forKey: group) else { return }
        groupOrder = []
        // Commands waiting in the group were not applied here: a read or a proposal not yet appended
        // goes to the partition's leader elsewhere; an appended one has an unknown outcome.
        for waiter in hosted.proposals.values { parked.append((partition, waiter)) }
        for waiter in hosted.reads.values { parked.append((partition, waiter)) }
        for read in hosted.readyReads { parked.append((partition, read.waiter)) }
        for pending in hosted.appended.values {
            finish(
                pending.waiter, error: "TRYAGAIN this replica was moved away; the write may or may not be applied",
                into: &output)
        }
        let range = KVRaftLog.range(of: group)
        keyspace.appendRaw([.deleteRange(start: range.start, end: range.end), .delete(key: Self.appliedKey(group))])
        if let map {
            let slots = map.slots(of: partition)
            keyspace.removeSlots(Int(slots.lowerBound)...Int(slots.upperBound))
        }
    }

    // MARK: Reconciling groups with the map

    /// On each group this node leads, takes one membership step towards the placement in the map:
    /// add a missing replica as a learner, promote a caught-up learner, remove a replica the map moved
    /// away, hand leadership to the preferred leader. One step at a time, each after the last settled.
    mutating func reconcile(into output: inout NodeOutput) {
        guard let map, let me = identity, ticks % 10 == 5 else { return }
        for (group, hosted) in groups where hosted.isLeader && ticks >= hosted.lastReconfiguredTick + 20 {
            let target = hosted.partition.map { map.placement[$0] } ?? map.metaVoters
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
            } else if let extra = configuration.voters.first(where: { !target.contains($0) }) {
                if extra == me {
                    if let next = target.first(where: { configuration.isVoter($0) && isAlive($0) }) {
                        stepGroup(
                            group, .transferLeadership(to: next, request: RequestID(rawValue: nextRequestID())),
                            into: &output)
                        groups[group]?.lastReconfiguredTick = ticks
                    }
                    continue
                }
                change = .remove(extra)
            } else if let preferred = target.first, preferred != me, configuration.isVoter(preferred),
                isAlive(preferred),
                let progress = hosted.raft.progress(of: preferred), progress.match >= hosted.raft.commitIndex,
                ticks >= hosted.lastReconfiguredTick + 200
            {
                stepGroup(
                    group, .transferLeadership(to: preferred, request: RequestID(rawValue: nextRequestID())),
                    into: &output)
                groups[group]?.lastReconfiguredTick = ticks
                continue
            }
            if let change {
                output.logs.append(NodeLog(.info, "membership step", [("group", "\(group)"), ("change", "\(change)")]))
                stepGroup(
                    group, .changeMembership(change, request: RequestID(rawValue: nextRequestID())), into: &output)
                groups[group]?.lastReconfiguredTick = ticks
            }
        }
    }

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
                if !hosted.expiring.isEmpty { groups[group]!.expiring.removeAll() }
                continue
            }
            let hashed = ByteKey(entry.key)
            guard !hosted.expiring.contains(hashed) else { continue }
            groups[group]!.expiring.insert(hashed)
            let command = ReplicatedCommand.expire(time: nowMilliseconds, key: entry.key, expiresAt: entry.expiresAt)
            let request = RequestID(rawValue: nextRequestID())
            stepGroup(group, .propose(command.encoded(), request: request), into: &output)
        }
    }
}
