import CairnCore
import CairnResilience
import Testing

@testable import CairnNode

@Suite("peer health: breakers, silent peers, safe retries")
struct PeerHealthTests {
    /// A key of a partition whose leader is not member `index`, and that leader's member index.
    static func keyLedElsewhere(_ cluster: inout ClusterHarness, from index: Int) throws -> (key: String, leader: Int) {
        // Leadership moves to each partition's preferred leader a little after the replicas settle.
        _ = cluster.run(upTo: 3000) { cluster in
            let core = cluster.members[index].core
            return core.groups.allValues.contains {
                $0.partition != nil && $0.raft.leader != nil && $0.raft.leader != core.identity
            }
        }
        let core = cluster.members[index].core
        let map = try #require(core.map)
        for candidate in (0..<1000).map({ "key\($0)" }) {
            let group = NodeCore.group(ofPartition: map.partition(ofKey: Array(candidate.utf8)))
            if let leader = core.groups[group]?.raft.leader, leader != core.identity,
                let position = cluster.index(of: leader)
            {
                return (candidate, position)
            }
        }
        Issue.record("no partition is led by another node than member \(index)")
        throw CancellationError()
    }

    /// Method: the leader of a key's partition dies; commands for the key arrive at another node, which
    /// still forwards to the dead leader. It must not wait for the 5 s deadline: a read and an idempotent
    /// write are sent again (and succeed at the new leader), a plain write is answered at once with its
    /// unknown outcome.
    @Test("forwards to a leader that went silent: reads and idempotent writes retried, plain writes answered")
    func silentLeader() throws {
        var cluster = try ClusterHarness(count: 3, partitions: 2)
        #expect(cluster.run(upTo: 3000) { $0.isFullyReplicated })
        let (key, leader) = try Self.keyLedElsewhere(&cluster, from: 0)
        let client = cluster.connect(0)
        #expect(cluster.send(0, client, "SET", key, "v1") == "+OK\r\n")
        cluster.crash(leader)
        let read = cluster.send(0, client, "GET", key, turns: 400)
        #expect(read == "$2\r\nv1\r\n", "\(read ?? "no reply within 4 s")")
        #expect(cluster.members[0].core.stats.forwardRetries > 0, "the read was not retried")

        try cluster.restart(leader)
        #expect(cluster.run(upTo: 5000) { $0.isFullyReplicated })
        let (other, otherLeader) = try Self.keyLedElsewhere(&cluster, from: 0)
        cluster.crash(otherLeader)
        let write = cluster.send(0, client, "SET", other, "v2", turns: 400)
        #expect(
            write?.hasPrefix("-TRYAGAIN node \(cluster.members[otherLeader].core.identity!)") == true
                && write?.contains("stopped answering; the outcome is unknown") == true,
            "\(write ?? "no reply within 4 s")")
        let retried = cluster.send(0, client, "IDEMPOTENT", "w1", "SET", other, "v3", turns: 400)
        #expect(retried == "+OK\r\n", "\(retried ?? "no reply within 4 s")")
    }

    /// Method: two of three nodes die, so no partition they led can elect a leader; node 1's commands
    /// for those partitions keep being forwarded to dead nodes and fail. Once enough have failed, the
    /// breakers open and commands fail at once with a clear TRYAGAIN; `ctl status` shows them. After the
    /// nodes return, the breakers close and commands succeed.
    @Test("breakers open on dead peers, fail fast, show in status, and close after the peers return")
    func breakersOpenAndClose() throws {
        var cluster = try ClusterHarness(count: 3, partitions: 4)
        #expect(cluster.run(upTo: 3000) { $0.isFullyReplicated })
        let (key, _) = try Self.keyLedElsewhere(&cluster, from: 0)
        let client = cluster.connect(0)
        #expect(cluster.send(0, client, "SET", key, "v") == "+OK\r\n")
        cluster.crash(1)
        cluster.crash(2)
        // Several clients at once: a breaker opens only on enough recent calls (20 in 10 s).
        let clients = (0..<6).map { _ in cluster.connect(0) }
        var fastFailure: String?
        for _ in 0..<40 where fastFailure == nil {
            let before = clients.map { cluster.replies[0]?[$0]?.count ?? 0 }
            for reader in clients {
                cluster.submit(0, reader, "GET", key)
            }
            _ = cluster.run(upTo: 600) { cluster in
                clients.indices.allSatisfy { (cluster.replies[0]?[clients[$0]]?.count ?? 0) > before[$0] }
            }
            fastFailure = clients.compactMap { cluster.replies[0]?[$0]?.last }.first { $0.contains("circuit open") }
        }
        let failure = try #require(fastFailure, "no breaker opened")
        #expect(failure.hasPrefix("-TRYAGAIN node "), "\(failure)")
        let status = cluster.members[0].core.statusText()
        #expect(status.contains("circuit to node"))
        let counted = status.split(separator: "\n").first { $0.hasPrefix("this node: ") }.map(String.init) ?? ""
        let rejections = cluster.members[0].core.stats.breakerRejections
        #expect(rejections > 0 && counted.hasSuffix("failed fast by a circuit \(rejections)"), "\(counted)")
        #expect(cluster.members[0].core.renderMetrics(now: cluster.now).contains("cairn_peer_circuit_state{peer="))
        try cluster.restart(1)
        try cluster.restart(2)
        #expect(cluster.run(upTo: 5000) { $0.isFullyReplicated })
        var recovered = false
        for _ in 0..<40 where !recovered {
            recovered = cluster.send(0, client, "GET", key, turns: 600) == "$1\r\nv\r\n"
            if !recovered { _ = cluster.run(upTo: 50) { _ in false } }
        }
        #expect(recovered, "commands did not succeed again after the peers returned")
        // A half-open breaker closes after `halfOpenProbes` successes: a few more reads.
        for _ in 0..<CircuitBreaker.Configuration.standard.halfOpenProbes {
            #expect(cluster.send(0, client, "GET", key, turns: 600) == "$1\r\nv\r\n")
        }
        // The breaker of the peer that now leads the key saw successes: it is closed.
        let group = NodeCore.group(
            ofPartition: try #require(cluster.members[0].core.map).partition(ofKey: Array(key.utf8)))
        let leader = try #require(cluster.members[0].core.groups[group]?.raft.leader)
        if leader != cluster.members[0].core.identity {
            #expect(cluster.members[0].core.breakers[leader]?.state == .closed)
        }
    }
}
