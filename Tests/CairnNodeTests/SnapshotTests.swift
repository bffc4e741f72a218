import CairnCore
import CairnRaft
import CairnStorage
import Testing

@testable import CairnNode

@Suite("snapshots: log compaction, and catching up from a snapshot")
struct SnapshotTests {
    @Test("a group snapshot survives encoding; damaged bytes never decode into a crash")
    func codec() throws {
        let partition = GroupSnapshot.partition(
            appliedTime: 1_700_000_000_123,
            records: [
                (Array("a".utf8), ValueRecord(value: Array("1".utf8))),
                (Array("b".utf8), ValueRecord(value: [], expiresAt: 1_700_000_999_000)),
            ],
            idempotency: [
                IdempotencyEntry(token: Array("t1".utf8), time: 1_700_000_000_100, reply: Array(":1\r\n".utf8))
            ])
        #expect(try GroupSnapshot.decode(partition.encoded()) == partition)
        let map = ClusterMap.founding(
            clusterID: 7, founder: NodeID(rawValue: 1),
            addresses: NodeAddresses(client: "a:1", peer: "a:2", http: "a:3"), partitionCount: 4, replicas: 3)
        #expect(try GroupSnapshot.decode(GroupSnapshot.meta(map).encoded()) == .meta(map))
        #expect(try GroupSnapshot.decode(GroupSnapshot.meta(nil).encoded()) == .meta(nil))
        let bytes = partition.encoded()
        expectDecodingSurvivesDamage(bytes, seed: 11) { try GroupSnapshot.decode($0) }
    }

    /// Method: 4 partitions, `--snapshot-entries` 10,000 but a node log budget of 4,000 entries: each
    /// group's share is 1,000 (staggered to 750 to 1,250), so 1,300 writes to one partition compact its
    /// log. With the budget out of the way (the control), the same writes leave the log whole.
    @Test("a node hosting many groups compacts each at its share of the node's log budget")
    func logBudgetShare() throws {
        for budget in [4000, 100_000_000] {
            var cluster = try ClusterHarness(count: 3, partitions: 4) { $0.logEntriesPerNodeMax = budget }
            #expect(cluster.run(upTo: 3000) { $0.isFullyReplicated })
            let client = cluster.connect(0)
            for index in 0..<1300 {
                // One write per loop turn: writes of one turn share an entry, and this counts entries.
                cluster.submit(0, client, "SET", "{t}k\(index)", "v")
                cluster.step(0, .turnEnded)
            }
            #expect(cluster.run(upTo: 3000) { ($0.replies[0]?[client]?.count ?? 0) == 1300 })
            let group = NodeCore.group(
                ofPartition: try #require(cluster.members[0].core.map).partition(ofKey: Array("{t}".utf8)))
            let compacted = cluster.run(upTo: 100) { cluster in
                cluster.members.allSatisfy { $0.core.groups[group]!.raft.snapshotMetadata.index.rawValue >= 750 }
            }
            #expect(compacted == (budget == 4000), "budget \(budget)")
        }
    }

    @Test("groups compact at staggered intervals: each within [0.75, 1.25) of the base, spread, about 1 on average")
    func staggeredIntervals() {
        let groups = (2...129).map { GroupID(rawValue: UInt64($0)) }
        let intervals = groups.map { NodeCore.staggered(2048, group: $0) }
        #expect(intervals.allSatisfy { $0 >= 1536 && $0 < 2560 }, "\(intervals)")
        #expect(Set(intervals).count >= 32, "\(Set(intervals).count) distinct intervals over 128 groups")
        let mean = Double(intervals.reduce(0, +)) / Double(intervals.count)
        #expect(abs(mean - 2048) < 2048 * 0.1, "mean \(mean)")
        #expect(NodeCore.staggered(1, group: groups[0]) >= 1)
    }

    /// Method: `--snapshot-entries` 1,000 (staggered to at most 1,250) and 1,300 writes in six loop turns: the leader batches them
    /// into a handful of entries, each counting as its writes, so the group still compacts its log.
    @Test("a log of few entries that each batch many writes is compacted as one of many entries")
    func batchedWritesCountTowardsCompaction() throws {
        var cluster = try ClusterHarness(count: 3, partitions: 4) {
            $0.snapshotEntries = 1000
            $0.logEntriesPerNodeMax = 100_000_000
        }
        #expect(cluster.run(upTo: 3000) { $0.isFullyReplicated })
        let map = try #require(cluster.members[0].core.map)
        let group = NodeCore.group(ofPartition: map.partition(ofKey: Array("{t}".utf8)))
        let leader = try #require(
            cluster.members.indices.first { cluster.members[$0].core.groups[group]?.isLeader == true })
        let client = cluster.connect(leader)
        for index in 0..<1300 {
            cluster.submit(leader, client, "SET", "{t}k\(index)", "v")
            if index % 256 == 255 { cluster.step(leader, .turnEnded) }
        }
        cluster.step(leader, .turnEnded)
        #expect(cluster.run(upTo: 3000) { ($0.replies[leader]?[client]?.count ?? 0) == 1300 })
        #expect(cluster.members[leader].core.groups[group]!.raft.lastIndex.rawValue < 100, "the writes were batched")
        #expect(
            cluster.run(upTo: 300) { cluster in
                cluster.members.allSatisfy { $0.core.groups[group]!.raft.snapshotMetadata.index.rawValue > 0 }
            })
    }

    @Test("logs are compacted; a node that missed the deleted entries, and a new node, catch up from snapshots")
    func catchUpFromSnapshot() throws {
        var cluster = try ClusterHarness(count: 3, partitions: 2) { $0.snapshotEntries = 20 }
        #expect(cluster.run(upTo: 3000) { $0.isFullyReplicated })
        cluster.crash(2)
        let client = cluster.connect(0)
        for key in 0..<120 {
            let ttl = key % 10 == 0 ? ["EX", "3600"] : []
            let reply = cluster.send(0, client, words: ["SET", "k\(key)", "v\(key)"] + ttl)
            #expect(reply == "+OK\r\n", "SET k\(key): \(reply ?? "no reply")")
        }
        #expect(cluster.send(0, client, "DEL", "k7") == ":1\r\n")
        // Compaction is checked every 100 ms (10 turns).
        let compacted = cluster.run(upTo: 300) { cluster in
            (0..<2).allSatisfy {
                cluster.members[0].core.groups[NodeCore.group(ofPartition: $0)]!.raft.snapshotMetadata.index.rawValue
                    > 20
            }
        }
        #expect(compacted, "the live nodes did not compact their logs")
        #expect(cluster.members[0].core.stats.snapshotsCreated >= 2)
        // A partition's records are its snapshot: compaction stored the metadata only.
        for partition in 0..<2 {
            let group = NodeCore.group(ofPartition: partition)
            let saved = try KVRaftLog(store: cluster.members[0].core.keyspace.store, group: group).snapshot()
            #expect(saved.metadata.index.rawValue > 20)
            #expect(saved.data.isEmpty, "partition \(partition)'s snapshot holds \(saved.data.count) bytes")
        }

        try cluster.restart(2)
        #expect(cluster.run(upTo: 3000) { $0.isFullyReplicated && $0.hasApplied(everything: 2) })
        #expect(cluster.members[2].core.stats.snapshotsRestored >= 1, "node 2 caught up without a snapshot")
        let prepared = cluster.members.map(\.core.stats.snapshotsPrepared).reduce(0, +)
        #expect(prepared >= 1, "no leader read its partition to send it")
        try expectAllKeys(&cluster, on: 2)
        // What the snapshot restored is durable: it is still there after another restart.
        cluster.crash(2)
        try cluster.restart(2)
        #expect(cluster.run(upTo: 3000) { $0.isFullyReplicated && $0.hasApplied(everything: 2) })
        try expectAllKeys(&cluster, on: 2)

        // A new node receives its replicas as snapshots too (the entries that built them are gone).
        try cluster.addMember(joiningThrough: 0, partitions: 2)
        #expect(cluster.run(upTo: 6000) { $0.members[3].core.identity != nil && $0.isFullyReplicated })
        #expect(cluster.members[3].core.stats.snapshotsRestored >= 1)
        #expect(cluster.run(upTo: 3000) { $0.hasApplied(everything: 3) })
        try expectAllKeys(&cluster, on: 3)
    }

    /// Reads every key written by `catchUpFromSnapshot` from node `index`'s own replicas (READONLY),
    /// checking values and TTLs.
    func expectAllKeys(_ cluster: inout ClusterHarness, on index: Int) throws {
        let map = try #require(cluster.members[index].core.map)
        let me = try #require(cluster.members[index].core.identity)
        let reader = cluster.connect(index)
        #expect(cluster.send(index, reader, "READONLY") == "+OK\r\n")
        var checked = 0
        for key in 0..<120 where map.placement[map.partition(ofKey: Array("k\(key)".utf8))].contains(me) {
            let value = "v\(key)"
            let expected = key == 7 ? "$-1\r\n" : "$\(value.utf8.count)\r\n\(value)\r\n"
            #expect(cluster.send(index, reader, "GET", "k\(key)") == expected, "k\(key) on member \(index)")
            if key % 10 == 0 {
                let ttl = cluster.send(index, reader, "TTL", "k\(key)") ?? ""
                #expect(ttl.hasPrefix(":3"), "k\(key) lost its TTL on member \(index): \(ttl)")
            }
            checked += 1
        }
        #expect(checked > 0, "member \(index) holds none of the keys")
    }
}

extension ClusterHarness {
    /// Whether member `index` applied every entry its groups' leaders committed.
    func hasApplied(everything index: Int) -> Bool {
        for (group, hosted) in members[index].core.groups.entries {
            guard let leader = hosted.raft.leader, let leaderIndex = self.index(of: leader),
                let leading = members[leaderIndex].core.groups[group]
            else { return false }
            if hosted.raft.lastAppliedIndex < leading.raft.commitIndex { return false }
        }
        return true
    }
}
