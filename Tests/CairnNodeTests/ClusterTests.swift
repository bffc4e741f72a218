import CairnCore
import CairnPlacement
import CairnRESP
import CairnStorage
import Testing

@testable import CairnNode

@Suite("cluster: nodes wired together in one thread")
struct ClusterTests {
    @Test("two nodes join the founder; every partition ends with three voting replicas")
    func joinAndReplicate() throws {
        var cluster = try ClusterHarness(count: 3)
        #expect(cluster.run(upTo: 3000) { $0.isFullyReplicated }, "not fully replicated in 3000 turns")
        let ids = cluster.members.compactMap { $0.core.identity }
        #expect(Set(ids) == [NodeID(rawValue: 1), NodeID(rawValue: 2), NodeID(rawValue: 3)])
        for member in cluster.members { #expect(member.core.map?.epoch == 3) }
    }

    @Test("any node answers any key: writes forwarded to leaders, reads linearizable everywhere")
    func forwarding() throws {
        var cluster = try ClusterHarness(count: 3)
        #expect(cluster.run(upTo: 3000) { $0.isFullyReplicated })
        let clients = (0..<3).map { cluster.connect($0) }
        for key in 0..<12 {
            #expect(cluster.send(key % 3, clients[key % 3], "SET", "k\(key)", "v\(key)") == "+OK\r\n")
        }
        for key in 0..<12 {
            let reader = (key + 1) % 3
            let value = "v\(key)"
            #expect(cluster.send(reader, clients[reader], "GET", "k\(key)") == "$\(value.utf8.count)\r\n\(value)\r\n")
        }
        let forwarded = cluster.members.reduce(0) { $0 + $1.core.stats.forwarded }
        #expect(forwarded > 0, "some keys must have had their leader elsewhere")
        #expect(
            cluster.send(0, clients[0], "MGET", "k0", "nope", "k5", "k11")
                == "*4\r\n$2\r\nv0\r\n$-1\r\n$2\r\nv5\r\n$3\r\nv11\r\n")
        #expect(cluster.send(1, clients[1], "DEL", "k0", "k5", "nope") == ":2\r\n")
        let map = try #require(cluster.members[0].core.map)
        let other = try #require(
            (2..<12).first { map.partition(ofKey: Array("k\($0)".utf8)) != map.partition(ofKey: Array("k1".utf8)) })
        #expect(cluster.send(2, clients[2], "RENAME", "k1", "k\(other)")?.hasPrefix("-CROSSSLOT") == true)
        #expect(cluster.send(2, clients[2], "RENAME", "{t}a", "{t}b") == "-ERR no such key\r\n")
    }

    @Test("a crashed leader is replaced; acknowledged writes survive; the node catches up on restart")
    func failover() throws {
        var cluster = try ClusterHarness(count: 3)
        #expect(cluster.run(upTo: 3000) { $0.isFullyReplicated })
        let map = try #require(cluster.members[0].core.map)
        let partition = map.partition(ofKey: Array("key".utf8))
        let group = NodeCore.group(ofPartition: partition)
        let leader = try #require(cluster.members[0].core.groups[group]?.raft.leader)
        let victim = try #require(cluster.index(of: leader))
        let survivor = (victim + 1) % 3
        let client = cluster.connect(survivor)
        #expect(cluster.send(survivor, client, "SET", "key", "before") == "+OK\r\n")
        cluster.crash(victim)
        // A write forwarded to the dead leader gets no answer until its deadline (TRYAGAIN, outcome
        // unknown); a client retries, and a retry after the election reaches the new leader.
        var reply: String?
        for _ in 0..<5 where reply != "+OK\r\n" {
            reply = cluster.send(survivor, client, "SET", "key", "after")
            #expect(reply == "+OK\r\n" || reply?.hasPrefix("-TRYAGAIN") == true, "unexpected reply \(reply ?? "none")")
        }
        #expect(reply == "+OK\r\n", "no new leader took over")
        #expect(cluster.send(survivor, client, "GET", "key") == "$5\r\nafter\r\n")
        try cluster.restart(victim)
        let reader = cluster.connect(victim)
        #expect(cluster.send(victim, reader, "READONLY") == "+OK\r\n")
        var caughtUp = false
        for _ in 0..<100 where !caughtUp {
            caughtUp = cluster.send(victim, reader, "GET", "key") == "$5\r\nafter\r\n"
            if !caughtUp { _ = cluster.run(upTo: 20) { _ in false } }
        }
        #expect(caughtUp, "the restarted node never saw the write made while it was down")
    }

    /// Method: a one-node cluster INCRs a counter five times (one entry each; the log is kept), then,
    /// with the node down, its store is turned back into format 2: one "applied/" record per group
    /// instead of the shared ones. Restarted, the node must read those (re-applying the log from 0
    /// would count to 10), move them into the shared records and say format 3.
    @Test("a store of format 2 (an applied-index record per group) restarts without applying anything twice")
    func upgradesAppliedRecords() throws {
        // 100 partitions: groups 2...101, so two shared records (64 groups each).
        var cluster = try ClusterHarness(count: 1, partitions: 100) { $0.snapshotEntries = 0 }
        #expect(cluster.run(upTo: 3000) { $0.members[0].core.isReady })
        let client = cluster.connect(0)
        for count in 1...5 { #expect(cluster.send(0, client, "INCR", "n") == ":\(count)\r\n") }
        cluster.crash(0)
        let store = cluster.members[0].store
        var mutations: [StorageMutation] = [.put(key: Keyspace.formatMetaKey, value: [2])]
        for bucket in 0..<2 as Range<UInt64> {
            let key = NodeCore.appliedBucketKey(bucket)
            guard let bytes = try store.get(key) else { continue }
            var reader = ByteReader(bytes)
            for _ in 0..<(bytes.count / 24) {
                let group = GroupID(rawValue: try reader.readUInt64("group"))
                var writer = ByteWriter(capacity: 16)
                writer.write(try reader.readUInt64("applied"))
                writer.write(try reader.readUInt64("time"))
                mutations.append(.put(key: NodeCore.appliedKey(group), value: writer.bytes))
            }
            mutations.append(.delete(key: key))
        }
        #expect(mutations.count > 100, "the node recorded every group's applied index: \(mutations.count)")
        try store.apply([StorageBatch(sequence: BatchSequence(1), mutations: mutations)], sync: true)
        try cluster.restart(0)
        #expect(cluster.run(upTo: 3000) { $0.members[0].core.isReady })
        let again = cluster.connect(0)
        #expect(cluster.send(0, again, "INCR", "n") == ":6\r\n")
        #expect(try store.get(Keyspace.formatMetaKey) == [3])
        let legacy = try store.scan(
            from: NodeCore.appliedKey(GroupID(rawValue: 0)), to: NodeCore.appliedKey(GroupID(rawValue: 1 << 20)),
            limit: 100)
        #expect(legacy.isEmpty, "the per-group records were moved: \(legacy.map(\.key))")
        #expect(try store.get(NodeCore.appliedBucketKey(0)) != nil)
        #expect(try store.get(NodeCore.appliedBucketKey(1)) != nil)
    }

    @Test("after the founder dies, a new node still joins through another member; placement moves replicas to it")
    func joinAfterMetaLeaderChange() throws {
        var cluster = try ClusterHarness(count: 3)
        #expect(cluster.run(upTo: 3000) { $0.isFullyReplicated })
        cluster.crash(0)
        try cluster.addMember(joiningThrough: 1)
        let joined = cluster.run(upTo: 3000) { $0.members[3].core.identity != nil }
        #expect(joined, "the fourth node was not admitted after the founder's death")
        #expect(cluster.members[3].core.identity == NodeID(rawValue: 4))
        try cluster.restart(0)
        let settled = cluster.run(upTo: 5000) { $0.isFullyReplicated }
        if !settled { cluster.printGroups() }
        #expect(settled, "replicas did not settle on four nodes")
        let hosted = cluster.members[3].core.groups.allValues.filter { $0.partition != nil }.count
        #expect(hosted >= 4, "the new node holds \(hosted) of 8 partitions × 3 replicas / 4 nodes = 6")
        let client = cluster.connect(3)
        #expect(cluster.send(3, client, "SET", "x", "1") == "+OK\r\n")
        #expect(cluster.send(3, client, "GET", "x") == "$1\r\n1\r\n")
    }

    /// Method: three nodes hold every partition, with 60 keys (a third with expiry times); a fourth
    /// joins, so each of them drops copies. Member 0's removal reads are never answered, then it
    /// crashes and restarts: it must finish the removals from their markers. On every node the key
    /// counters, the stored keys and the markers must then match the partitions the node still holds.
    @Test("a copy moved away is deleted by one range deletion after an off-loop count, also across a crash")
    func movedAwayCopiesAreRemoved() throws {
        var cluster = try ClusterHarness(count: 3, partitions: 8)
        #expect(cluster.run(upTo: 3000) { $0.isFullyReplicated })
        let client = cluster.connect(0)
        let keys = (0..<60).map { "key\($0)" }
        for (index, key) in keys.enumerated() {
            let words = index % 3 == 0 ? ["SET", key, "v", "EX", "100000"] : ["SET", key, "v"]
            #expect(cluster.send(0, client, words: words) == "+OK\r\n")
        }
        cluster.unansweredRemovalReads = [0]
        try cluster.addMember(joiningThrough: 0)
        #expect(cluster.run(upTo: 5000) { $0.isFullyReplicated })
        #expect(!cluster.members[0].core.removals.isEmpty, "member 0 dropped no copy")
        #expect(cluster.members[0].core.keyspace.keyCount == 60, "nothing is deleted before the count")
        cluster.crash(0)
        cluster.unansweredRemovalReads = []
        try cluster.restart(0)
        #expect(!cluster.members[0].core.removals.isEmpty, "the restart must find the unfinished removals")
        #expect(cluster.run(upTo: 500) { $0.members[0].core.removals.isEmpty }, "removals not finished after restart")
        #expect(cluster.run(upTo: 5000) { $0.isFullyReplicated })
        for (index, member) in cluster.members.enumerated() {
            let map = try #require(member.core.map)
            let me = try #require(member.core.identity)
            let held = keys.enumerated().filter {
                map.placement[map.partition(ofKey: Array($0.element.utf8))].contains(me)
            }
            let stored = try Keyspace.records(inSlots: 0...16383, store: member.store, overlay: [:])
            #expect(
                Set(stored.map { String(decoding: $0.key, as: UTF8.self) }) == Set(held.map(\.element)),
                "member \(index)")
            #expect(member.core.keyspace.keyCount == Int64(held.count), "member \(index)")
            #expect(
                member.core.keyspace.expiringKeyCount == Int64(held.filter { $0.offset % 3 == 0 }.count),
                "member \(index)")
            let expiryIndex = try member.store.scan(
                from: [StorageLayout.expiryPrefix], to: [StorageLayout.expiryPrefix + 1], limit: 100)
            let indexed = Set(
                expiryIndex.compactMap {
                    StorageLayout.parseExpiryKey($0.key).map { String(decoding: $0.key, as: UTF8.self) }
                })
            #expect(indexed == Set(held.filter { $0.offset % 3 == 0 }.map(\.element)), "member \(index)")
            let markers = try member.store.scan(
                from: NodeCore.removalPrefix, to: NodeCore.removalPrefix + [0xFF], limit: 10)
            #expect(markers.isEmpty, "member \(index) kept removal markers")
        }
        let reader = cluster.connect(3)
        for key in keys { #expect(cluster.send(3, reader, "GET", key) == "$1\r\nv\r\n") }
    }

    @Test("a node silent past the dead-node timeout is marked dead and its replicas rebuilt; back, it is placed again")
    func deadNodeReplaced() throws {
        var cluster = try ClusterHarness(count: 4, partitions: 4) { $0.deadNodeTicks = 300 }
        #expect(cluster.run(upTo: 5000) { $0.isFullyReplicated })
        let client = cluster.connect(0)
        for key in 0..<20 { #expect(cluster.send(0, client, "SET", "k\(key)", "v\(key)") == "+OK\r\n") }
        let victim = 1
        let dead = try #require(cluster.members[victim].core.identity)
        #expect(cluster.members[0].core.map!.placement.contains { $0.contains(dead) })
        cluster.crash(victim)
        let markedDead = cluster.run(upTo: 2000) { $0.members[0].core.map?.node(dead)?.state == .dead }
        #expect(markedDead, "node \(dead) was not marked dead")
        let map = try #require(cluster.members[0].core.map)
        #expect(!map.placement.contains { $0.contains(dead) }, "a dead node still holds replicas in the placement")
        #expect(map.placement.allSatisfy { $0.count == 3 }, "replica count not restored on the three live nodes")
        #expect(!map.metaVoters.contains(dead))
        // Every group on the live nodes now has three live voters: the dead node's copies were rebuilt.
        #expect(cluster.run(upTo: 5000) { $0.isFullyReplicated }, "replicas were not rebuilt")
        let reader = cluster.connect(3)
        for key in 0..<20 {
            #expect(cluster.send(3, reader, "GET", "k\(key)") == "$\(2 + (key >= 10 ? 1 : 0))\r\nv\(key)\r\n")
        }

        try cluster.restart(victim)
        let back = cluster.run(upTo: 2000) { $0.members[0].core.map?.node(dead)?.state == .active }
        #expect(back, "the returning node was not marked alive")
        let resettled = cluster.run(upTo: 8000) { $0.isFullyReplicated }
        if !resettled { cluster.printGroups() }
        #expect(resettled, "replicas did not settle with the node back")
        #expect(cluster.members[0].core.map!.placement.contains { $0.contains(dead) }, "the node got no replicas back")
        let returning = cluster.connect(victim)
        for key in 0..<20 {
            #expect(cluster.send(victim, returning, "GET", "k\(key)") == "$\(2 + (key >= 10 ? 1 : 0))\r\nv\(key)\r\n")
        }
    }

    /// Method: four nodes, one move at a time per leader; decommission node 4 through node 2 (which does
    /// not lead the meta group, so the request travels). Node 4 must go leaving → removed, every partition
    /// must end with three replicas on the others, the data must stay readable, the removed node must
    /// refuse clients, and with `maxMoves` 1 some partition must have waited for its turn.
    @Test("a decommissioned node drains, is removed, and nothing is lost; moves wait for a slot")
    func decommissionDrainsAndRemoves() throws {
        var cluster = try ClusterHarness(count: 4, partitions: 8) { $0.maxMoves = 1 }
        #expect(cluster.run(upTo: 5000) { $0.isFullyReplicated })
        let client = cluster.connect(0)
        for key in 0..<20 { #expect(cluster.send(0, client, "SET", "k\(key)", "v\(key)") == "+OK\r\n") }
        let leaving = try #require(cluster.members[3].core.identity)
        #expect(cluster.admin(1, .decommission(NodeID(rawValue: 99)))?.status == 404)
        #expect(cluster.admin(1, .remove(leaving, force: false))?.status == 409, "an active node needs --force")
        let answer = cluster.admin(1, .decommission(leaving))
        let reply = try #require(answer)
        #expect(reply.status == 202, "\(reply)")
        #expect(cluster.run(upTo: 500) { $0.members[0].core.map?.node(leaving)?.state == .leaving })
        var sawWaiting = false
        let removed = cluster.run(upTo: 10_000) { cluster in
            sawWaiting =
                sawWaiting || cluster.members.contains { $0.core.rebalanceJSON().contains("\"state\":\"waiting\"") }
            return cluster.members[0].core.map?.node(leaving)?.state == .removed
        }
        if !removed { cluster.printGroups() }
        #expect(removed, "node \(leaving) was not removed")
        #expect(sawWaiting, "with --max-moves 1, no partition ever waited for a move slot")
        #expect(cluster.members[3].core.groups.isEmpty, "the removed node still hosts groups")
        #expect(
            cluster.run(upTo: 500) {
                !$0.members[3].core.isReady && $0.members[3].core.map?.node(leaving)?.state == .removed
            })
        let refused = cluster.connect(3)
        #expect(cluster.send(3, refused, "GET", "k1")?.hasPrefix("-CLUSTERDOWN this node was removed") == true)
        // With fewer active nodes than replicas left, a further decommission is refused.
        let other = try #require(cluster.members[1].core.identity)
        #expect(cluster.admin(0, .decommission(other))?.status == 409)
        cluster.crash(3)
        #expect(cluster.run(upTo: 5000) { $0.isFullyReplicated })
        let map = try #require(cluster.members[0].core.map)
        #expect(map.placement.allSatisfy { $0.count == 3 && !$0.contains(leaving) })
        let reader = cluster.connect(2)
        for key in 0..<20 {
            #expect(cluster.send(2, reader, "GET", "k\(key)") == "$\(2 + (key >= 10 ? 1 : 0))\r\nv\(key)\r\n")
        }
    }

    /// Method: a fourth node joins three with one move at a time; every turn, if node 4 leads a
    /// partition, no copy of a partition the map places on node 4 may still lack it as a voter (in a
    /// join every old node holds a copy of each moving partition, so each leader sees every move).
    /// Then node 4 must still end up leading its preferred partitions.
    @Test("leadership goes to a joining node only after the moves onto it are done")
    func leadershipWaitsForMovesOntoANode() throws {
        var cluster = try ClusterHarness(count: 3, partitions: 24) { $0.maxMoves = 1 }
        #expect(cluster.run(upTo: 3000) { $0.isFullyReplicated })
        try cluster.addMember(joiningThrough: 0, partitions: 24)
        func leadsEarly(_ cluster: ClusterHarness) -> Bool {
            let newcomer = cluster.members[3].core
            guard let me = newcomer.identity, let map = newcomer.map else { return false }
            let leads = newcomer.groups.keys.contains {
                $0 != NodeCore.metaGroup && newcomer.groups[existing: $0].isLeader
            }
            guard leads else { return false }
            return cluster.members.prefix(3).contains { member in
                (0..<map.partitionCount).contains { partition in
                    let group = NodeCore.group(ofPartition: partition)
                    return map.placement[partition].contains(me) && member.core.groups.contains(group)
                        && !member.core.groups[existing: group].raft.configuration.isVoter(me)
                }
            }
        }
        var ledEarly = false
        func settled(_ cluster: ClusterHarness) -> Bool {
            guard cluster.isFullyReplicated, let map = cluster.members[3].core.map, map.nodes.count == 4 else {
                return false
            }
            return (0..<map.partitionCount).allSatisfy { partition in
                let preferred = map.placement[partition][0]
                guard let index = cluster.index(of: preferred) else { return false }
                let group = NodeCore.group(ofPartition: partition)
                let core = cluster.members[index].core
                return core.groups.contains(group) && core.groups[existing: group].isLeader
            }
        }
        let done = cluster.run(upTo: 20_000) { cluster in
            ledEarly = ledEarly || leadsEarly(cluster)
            return settled(cluster)
        }
        if !done { cluster.printGroups() }
        #expect(done, "the join did not settle with every preferred leader leading")
        #expect(!ledEarly, "node 4 led a partition while moves onto it were still going on")
        let map = try #require(cluster.members[3].core.map)
        let me = try #require(cluster.members[3].core.identity)
        #expect(map.placement.contains { $0.first == me }, "node 4 is nobody's preferred leader: nothing was tested")
    }

    @Test("a joining node answers keys of partitions whose move to it waits its turn, by forwarding them")
    func joiningNodeForwardsWaitingPartitions() throws {
        var cluster = try ClusterHarness(count: 3, partitions: 8) { $0.maxMoves = 1 }
        #expect(cluster.run(upTo: 3000) { $0.isFullyReplicated })
        let writer = cluster.connect(0)
        let candidates = (0..<400).map { "key\($0)" }
        for key in candidates { #expect(cluster.send(0, writer, "SET", key, "v-\(key)") == "+OK\r\n") }
        try cluster.addMember(joiningThrough: 0)
        // Wait until node 4 holds a copy it does not vote in yet, of a partition the map wants it to
        // lead: with one move at a time per node, such a move waits for its turn, and that copy knows
        // no leader (nobody has written to it).
        func waitingPartitions(_ cluster: ClusterHarness) -> [Int] {
            let core = cluster.members[3].core
            guard let me = core.identity, let map = core.map else { return [] }
            return (0..<map.partitionCount).filter { partition in
                let group = NodeCore.group(ofPartition: partition)
                return map.placement[partition].first == me && core.groups.contains(group)
                    && !core.groups[existing: group].raft.configuration.isVoter(me)
            }
        }
        #expect(cluster.run(upTo: 2000) { !waitingPartitions($0).isEmpty }, "no move to node 4 waited")
        let waiting = Set(waitingPartitions(cluster))
        let map = try #require(cluster.members[3].core.map)
        let keys = candidates.filter { waiting.contains(map.partition(ofKey: Array($0.utf8))) }
        #expect(!keys.isEmpty)
        let reader = cluster.connect(3)
        // Each read must come back well before the 5 s request deadline (100 turns = 1 s): the copy
        // sends the command to the other replicas instead of holding it until a leader shows up.
        for key in keys.prefix(5) {
            let reply = cluster.send(3, reader, "GET", key, turns: 100)
            #expect(reply == "$\(2 + key.count)\r\nv-\(key)\r\n", "\(key): \(reply ?? "no reply within 1 s")")
        }
    }

    /// Method: two decommissions of different nodes are accepted by two nodes against the same map (4
    /// nodes, 3 replicas: each alone is fine). Applied in log order, the second must be refused.
    @Test("two concurrent decommissions that together would leave too few nodes: only one applies")
    func concurrentDecommissions() throws {
        var cluster = try ClusterHarness(count: 4, partitions: 4)
        #expect(cluster.run(upTo: 5000) { $0.isFullyReplicated })
        let third = try #require(cluster.members[2].core.identity)
        let fourth = try #require(cluster.members[3].core.identity)
        #expect(cluster.admin(1, .decommission(third))?.status == 202)
        #expect(cluster.admin(0, .decommission(fourth))?.status == 202)
        _ = cluster.run(upTo: 500) { _ in false }
        let map = try #require(cluster.members[0].core.map)
        let leaving = map.nodes.filter { $0.state == .leaving || $0.state == .removed }.map(\.id)
        #expect(leaving.count == 1, "both applied: \(map.nodes.map { "\($0.id) \($0.state)" })")
        #expect(map.activeNodes.count == 3)
    }

    /// Method: the meta state machine alone: a map of four nodes, then each membership command in the
    /// node states where it must apply, and where it must be refused; every command also survives its
    /// encoding. (The checks run again at apply, in log order, because the HTTP answer was given against
    /// a map that may have changed since.)
    @Test("membership commands apply only from the states they allow, and survive encoding")
    func membershipCommands() throws {
        var map = ClusterMap.founding(
            clusterID: 1, founder: NodeID(rawValue: 1),
            addresses: NodeAddresses(client: "a:1", peer: "a:2", http: "a:3"),
            partitionCount: 8, replicas: 3)
        for index in 2...4 {
            _ = map.apply(.addNode(NodeAddresses(client: "n\(index):1", peer: "n\(index):2", http: "n\(index):3")))
        }
        let (two, three, four) = (NodeID(rawValue: 2), NodeID(rawValue: 3), NodeID(rawValue: 4))
        #expect(map.apply(.removeUnlessActive(two)) == .refused, "an active node needs force")
        #expect(map.node(two)?.state == .active)
        _ = map.apply(.markDead(two))
        #expect(map.apply(.removeUnlessActive(two)) == .done)
        #expect(map.node(two)?.state == .removed)
        #expect(map.apply(.decommission(three)) == .refused, "3 replicas need 3 active nodes; 2 would be left")
        _ = map.apply(.addNode(NodeAddresses(client: "n5:1", peer: "n5:2", http: "n5:3")))
        #expect(map.apply(.decommission(three)) == .done)
        #expect(map.node(three)?.state == .leaving)
        #expect(!map.placement.contains { $0.contains(three) } && !map.metaVoters.contains(three))
        #expect(map.apply(.removeNode(four)) == .done, "forced removal of an active node")
        #expect(map.node(four)?.state == .removed)
        for command: MetaCommand in [
            .decommission(three), .removeNode(four), .removeUnlessActive(two), .markDead(two), .markAlive(two),
        ] {
            #expect(try MetaCommand.decode(command.encoded()) == command)
        }
    }

    @Test("a dead node is removed by an operator; its replicas are rebuilt on the others")
    func removeDeadNode() throws {
        var cluster = try ClusterHarness(count: 4, partitions: 4) { $0.deadNodeTicks = 0 }
        #expect(cluster.run(upTo: 5000) { $0.isFullyReplicated })
        let gone = try #require(cluster.members[2].core.identity)
        cluster.crash(2)
        #expect(cluster.admin(0, .remove(gone, force: false))?.status == 409, "not marked dead: needs --force")
        #expect(cluster.admin(0, .remove(gone, force: true))?.status == 202)
        #expect(cluster.run(upTo: 500) { $0.members[0].core.map?.node(gone)?.state == .removed })
        #expect(cluster.run(upTo: 8000) { $0.isFullyReplicated }, "replicas were not rebuilt")
        #expect(cluster.admin(0, .remove(gone, force: true))?.status == 409, "removed twice")
    }

    /// Method: every node's wall clock is 30 s ahead of the previous one's. A forwarded command carries
    /// its deadline as the time left, so the leader rebuilds it on its own clock; an absolute deadline
    /// would be long past on a node ahead (the command refused as timed out) and far off on one behind.
    @Test("forwarded commands work between nodes whose clocks disagree by tens of seconds")
    func clockSkew() throws {
        var cluster = try ClusterHarness(count: 3, partitions: 4)
        for index in 0..<3 { cluster.members[index].clockSkewMicroseconds = Int64(index) * 30_000_000 }
        #expect(cluster.run(upTo: 3000) { $0.isFullyReplicated })
        for index in 0..<3 {
            let client = cluster.connect(index)
            for key in 0..<8 {
                #expect(cluster.send(index, client, "SET", "s\(index).\(key)", "v") == "+OK\r\n", "via node \(index)")
                #expect(cluster.send(index, client, "GET", "s\(index).\(key)") == "$1\r\nv\r\n")
            }
        }
        #expect(cluster.members.allSatisfy { $0.core.stats.forwarded > 0 }, "nothing was forwarded")
    }

    @Test("three nodes, one dead: the meta group keeps the two live voters and can still change the map")
    func deadNodeOfThreeKeepsMetaAlive() throws {
        var cluster = try ClusterHarness(count: 3, partitions: 4) { $0.deadNodeTicks = 300 }
        #expect(cluster.run(upTo: 5000) { $0.isFullyReplicated })
        let dead = try #require(cluster.members[2].core.identity)
        cluster.crash(2)
        #expect(cluster.run(upTo: 2000) { $0.members[0].core.map?.node(dead)?.state == .dead })
        let map = try #require(cluster.members[0].core.map)
        #expect(map.metaVoters.count == 2 && !map.metaVoters.contains(dead), "meta voters \(map.metaVoters)")
        let metaSettled = cluster.run(upTo: 3000) { cluster in
            let meta = cluster.members[0].core.groups[NodeCore.metaGroup]?.raft
            return meta?.configuration.voters == map.metaVoters && meta?.leader != nil
        }
        #expect(metaSettled, "the meta group did not settle on the live voters with a leader")
        // The map can still change: a new node is admitted (a meta commit).
        try cluster.addMember(joiningThrough: 0, partitions: 4)
        #expect(cluster.run(upTo: 3000) { $0.members[3].core.identity != nil }, "no node admitted after the death")
    }

    @Test("idle groups go quiet on every member; a write wakes one; a dead leader's quiet groups still fail over")
    func quietGroups() throws {
        var cluster = try ClusterHarness(count: 3)
        #expect(cluster.run(upTo: 3000) { $0.isFullyReplicated })
        let allQuiet = cluster.run(upTo: 500) { cluster in
            cluster.members.allSatisfy { $0.core.groups.allValues.allSatisfy(\.isQuiet) }
        }
        #expect(allQuiet, "idle groups did not all go quiet")
        if !allQuiet {
            for (index, member) in cluster.members.enumerated() {
                for (group, hosted) in member.core.groups.entries where !hosted.isQuiet {
                    print(
                        "member \(index) group \(group) role \(hosted.raft.role) leader \(hosted.raft.leader.map { "\($0)" } ?? "-")",
                        "term \(hosted.raft.term) commit \(hosted.raft.commitIndex) last \(hosted.raft.lastIndex)",
                        "idleLeader \(member.core.isIdleLeader(group)) active \(hosted.activeTick) ticks \(member.core.ticks)",
                        "config \(hosted.raft.configuration)")
                }
            }
        }
        // Quiet groups send nothing: after the answers to the last heartbeats, over 100 idle turns,
        // only node-level heartbeats travel.
        _ = cluster.run(upTo: 5) { _ in false }
        var raftMessages = 0
        for _ in 0..<100 {
            for (_, bytes) in cluster.inFlight {
                let envelope = try PeerEnvelope.decode(bytes)
                raftMessages += envelope.messages.count
            }
            cluster.turn()
        }
        #expect(raftMessages == 0, "\(raftMessages) messages sent while every group was quiet")

        let map = try #require(cluster.members[0].core.map)
        let partition = map.partition(ofKey: Array("quiet".utf8))
        let group = NodeCore.group(ofPartition: partition)
        let client = cluster.connect(0)
        #expect(cluster.send(0, client, "SET", "quiet", "1") == "+OK\r\n")
        #expect(cluster.members.allSatisfy { $0.core.groups[group].map { !$0.isQuiet } ?? true })
        let requiet = cluster.run(upTo: 500) { $0.members.allSatisfy { $0.core.groups[group]?.isQuiet ?? true } }
        #expect(requiet, "the group did not go quiet again after the write")

        let leader = try #require(cluster.members[0].core.groups[group]?.raft.leader)
        let victim = try #require(cluster.index(of: leader))
        let led = (0..<map.partitionCount).filter {
            cluster.members[victim].core.groups[NodeCore.group(ofPartition: $0)]?.isLeader == true
        }
        cluster.crash(victim)
        let survivor = (victim + 1) % 3
        let failedOver = cluster.run(upTo: 1000) { cluster in
            led.allSatisfy { partition in
                let raft = cluster.members[survivor].core.groups[NodeCore.group(ofPartition: partition)]?.raft
                return raft?.leader != nil && raft?.leader != leader
            }
        }
        #expect(failedOver, "the quiet groups led by the dead node did not elect new leaders")
        #expect(cluster.members[survivor].core.stats.quietWakeups > 0)
        let writer = cluster.connect(survivor)
        #expect(cluster.send(survivor, writer, "SET", "quiet", "2") == "+OK\r\n")
        #expect(cluster.send(survivor, writer, "GET", "quiet") == "$1\r\n2\r\n")
    }

    @Test("a command whose outcome is lost inside the node is answered TRYAGAIN a second after its deadline")
    func watchdogAnswersLostCommands() throws {
        var cluster = try ClusterHarness(count: 3)
        #expect(cluster.run(upTo: 3000) { $0.isFullyReplicated })
        let me = try #require(cluster.members[0].core.identity)
        // Leadership moves to the preferred leaders after a while: wait until node 0 leads fewer.
        let spread = cluster.run(upTo: 3000) { cluster in
            cluster.members[0].core.groups.allValues.contains {
                $0.partition != nil && !$0.isLeader && $0.raft.leader != nil
            }
        }
        #expect(spread)
        let map = try #require(cluster.members[0].core.map)
        let core = cluster.members[0].core
        let key = try #require(
            (0..<100).map { "w\($0)" }.first { key in
                let group = NodeCore.group(ofPartition: map.partition(ofKey: Array(key.utf8)))
                return core.groups[group].map { $0.raft.leader != me && $0.raft.leader != nil } ?? true
            })
        let client = cluster.connect(0)
        cluster.submit(0, client, "SET", key, "v")
        cluster.submit(0, client, "PING")
        // Simulate the bug the watchdog is for: the node forgets the forwarded command.
        #expect(cluster.members[0].core.forwards.count == 1)
        cluster.members[0].core.forwards.removeAll()
        let answered = cluster.run(upTo: 1000) { ($0.replies[0]?[client]?.count ?? 0) >= 2 }
        #expect(answered, "the lost command was never answered")
        let replies = cluster.replies[0]?[client] ?? []
        #expect(replies.first?.hasPrefix("-TRYAGAIN the outcome of this command was lost") == true, "\(replies)")
        #expect(replies.dropFirst().first == "+PONG\r\n", "the reply held behind the lost one must follow it")
        #expect(cluster.members[0].core.stats.lostReplies == 1)
    }

    /// Method: 300 INCRs of one key and then a GET, all in one loop turn on the key's leader. Each INCR
    /// must get its own count, in order; the GET (same turn) must see all of them; and the group's log
    /// must have grown by two entries (256 + 44), not 300.
    @Test("writes a leader accepts in one loop turn share a Raft entry; each gets its own reply, and a read sees them")
    func writesOfOneTurnShareAnEntry() throws {
        var cluster = try ClusterHarness(count: 3, partitions: 4)
        #expect(cluster.run(upTo: 3000) { $0.isFullyReplicated })
        let map = try #require(cluster.members[0].core.map)
        let group = NodeCore.group(ofPartition: map.partition(ofKey: Array("{t}".utf8)))
        let leader = try #require(
            cluster.members.indices.first { cluster.members[$0].core.groups[group]?.isLeader == true })
        let before = cluster.members[leader].core.groups[group]!.raft.lastIndex
        let client = cluster.connect(leader)
        for _ in 0..<300 { cluster.submit(leader, client, "INCR", "{t}n") }
        cluster.submit(leader, client, "GET", "{t}n")
        cluster.step(leader, .turnEnded)
        #expect(cluster.run(upTo: 1000) { ($0.replies[leader]?[client]?.count ?? 0) == 301 })
        let replies = cluster.replies[leader]?[client] ?? []
        #expect(Array(replies.prefix(300)) == (1...300).map { ":\($0)\r\n" })
        #expect(replies.last == "$3\r\n300\r\n")
        let after = cluster.members[leader].core.groups[group]!.raft.lastIndex
        #expect(after.rawValue - before.rawValue == 2, "300 writes in batches of at most 256")
        // The followers apply the same entries.
        #expect(
            cluster.run(upTo: 1000) { cluster in
                cluster.members.allSatisfy { $0.core.groups[group]!.raft.lastAppliedIndex >= after }
            })
    }

    @Test("a batch entry survives encoding; truncated, corrupt or oversized ones are decode errors")
    func batchEntryCodec() throws {
        let batch = ReplicatedCommand.batch(
            time: 1234,
            commands: [[Array("SET".utf8), Array("k".utf8), Array("v".utf8)], [Array("DEL".utf8), [0, 1]]])
        let bytes = batch.encoded()
        #expect(try ReplicatedCommand.decode(bytes) == batch)
        expectDecodingSurvivesDamage(bytes, seed: 9) { try ReplicatedCommand.decode($0) }
        // A count above the limit is refused before anything is allocated for it.
        let many = ReplicatedCommand.batch(
            time: 0, commands: Array(repeating: [Array("PING".utf8)], count: Limits.replicatedBatchCommandsMax + 1))
        #expect(throws: DecodeError.self) { try ReplicatedCommand.decode(many.encoded()) }
    }

    /// Method: three waiters of one entry with deadlines 10, 20 and 100 ms. At 50 ms the first two are
    /// answered (each with the text) and keep their places; at 200 ms the last one too, and the entry
    /// leaves the books.
    @Test("waiters of a batch entry expire one by one and keep their places")
    func batchWaitersExpireOneByOne() {
        func waiter(_ sequence: UInt64, deadline: Int64) -> Waiter {
            Waiter(
                origin: .client(ClientID(1), sequence: sequence), arguments: [Array("SET".utf8)], command: 0,
                protocolVersion: .resp2, startedAt: 0, deadline: deadline)
        }
        var expired: [(Waiter, String)] = []
        let first = NodeCore.expire(
            [waiter(0, deadline: 10), waiter(1, deadline: 20), waiter(2, deadline: 100)], now: 50, "late",
            into: &expired)
        #expect(expired.map(\.0.origin) == [.client(ClientID(1), sequence: 0), .client(ClientID(1), sequence: 1)])
        #expect(first?.map(\.origin) == [.answered, .answered, .client(ClientID(1), sequence: 2)])
        expired = []
        #expect(NodeCore.expire(first ?? [], now: 200, "late", into: &expired) == nil)
        #expect(expired.map(\.0.origin) == [.client(ClientID(1), sequence: 2)], "answered ones are not answered again")
    }

    @Test("the cluster map and peer envelopes survive encoding; garbage never decodes into a crash")
    func codecs() throws {
        var map = ClusterMap.founding(
            clusterID: 42, founder: NodeID(rawValue: 1),
            addresses: NodeAddresses(client: "a:1", peer: "a:2", http: "a:3"), partitionCount: 16, replicas: 3)
        _ = map.apply(.addNode(NodeAddresses(client: "b:1", peer: "b:2", http: "b:3")))
        #expect(try ClusterMap.decode(map.encoded()) == map)
        let envelope = PeerEnvelope(
            clusterID: 42, from: NodeID(rawValue: 2), epoch: 2,
            messages: [
                .map(map), .mapRequest, .join(NodeAddresses(client: "c:1", peer: "c:2", http: "c:3")),
                .forward(
                    ForwardRequest(
                        id: 7, partition: 3, remainingMilliseconds: 99, protocolVersion: 3, isStaleReadAllowed: true,
                        arguments: [Array("GET".utf8), Array("k".utf8)])),
                .forwardReply(id: 7, .reply(Array("$1\r\nv\r\n".utf8), isError: false)),
                .forwardReply(id: 8, .notLeader(hint: NodeID(rawValue: 3))),
                .quiesce(GroupID(rawValue: 9), term: Term(rawValue: 4)),
                .members(
                    GroupID(rawValue: 5), [NodeID(rawValue: 1), NodeID(rawValue: 3)],
                    configurationIndex: LogIndex(rawValue: 17)),
                .metaRequest(.decommission(NodeID(rawValue: 4))), .metaRequest(.removeNode(NodeID(rawValue: 5))),
            ])
        let bytes = envelope.encoded()
        #expect(try PeerEnvelope.decode(bytes) == envelope)
        expectDecodingSurvivesDamage(bytes, seed: 5) { try PeerEnvelope.decode($0) }
    }
}
