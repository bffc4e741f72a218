import CairnCore
import Testing

@testable import CairnNode

@Suite("admission control")
struct AdmissionTests {
    /// Method: a pipeline of writes arrives in one turn at a node allowed 3 commands without replies
    /// (each write waits for its commit). The first 3 must be accepted, the rest refused at once with a
    /// retryable error naming the limit; every command gets a reply, in order; once replies are out,
    /// new commands are accepted again. Non-routed commands (PING) are never refused.
    @Test("past --max-inflight, commands that must wait are refused at once with TRYAGAIN, in order")
    func refusesPastTheLimit() throws {
        var cluster = try ClusterHarness(count: 3, partitions: 2) { $0.maxCommandsInFlight = 3 }
        #expect(cluster.run(upTo: 3000) { $0.isFullyReplicated })
        let client = cluster.connect(1)
        for index in 0..<6 {
            cluster.submit(1, client, "SET", "k\(index)", "\u{1}")
        }
        cluster.submit(1, client, "PING")
        #expect(cluster.run(upTo: 1000) { ($0.replies[1]?[client]?.count ?? 0) == 7 })
        let replies = cluster.replies[1]?[client] ?? []
        #expect(Array(replies.prefix(3)) == Array(repeating: "+OK\r\n", count: 3), "\(replies)")
        for reply in replies[3..<6] {
            #expect(
                reply.hasPrefix("-TRYAGAIN node overloaded: more than 3 commands wait for replies here"), "\(reply)")
        }
        #expect(replies.last == "+PONG\r\n")
        #expect(cluster.members[1].core.commandsAwaitingReply == 0)
        #expect(cluster.send(1, client, "SET", "k3", "again") == "+OK\r\n", "not accepted again after the replies")
        #expect(
            cluster.members[1].core.renderMetrics(now: cluster.now).contains(
                "cairn_commands_refused_total{reason=\"overloaded\"} 3"))
    }

    @Test("a connection that closes with commands pending gives its share of the limit back")
    func disconnectReleases() throws {
        var cluster = try ClusterHarness(count: 3, partitions: 2) { $0.maxCommandsInFlight = 2 }
        #expect(cluster.run(upTo: 3000) { $0.isFullyReplicated })
        let leaving = cluster.connect(0)
        for index in 0..<2 {
            cluster.submit(0, leaving, "SET", "x\(index)", "\u{1}")
        }
        #expect(cluster.members[0].core.commandsAwaitingReply(of: leaving) == 2)
        cluster.step(0, .disconnected(leaving))
        #expect(cluster.members[0].core.commandsAwaitingReply == 0)
        let client = cluster.connect(0)
        #expect(cluster.send(0, client, "SET", "y", "1") == "+OK\r\n")
    }

    /// Method: a node limits each client address to 4 commands per second. Two connections from one
    /// address send 6 writes in one turn: the first 4 pass, the other 2 are refused at once with a
    /// retryable error naming the address, the limit and the wait; PING is never counted; another
    /// address has its own bucket; a second later the address may send again; and the bucket outlives
    /// the address's last connection until it is full again (reconnecting does not refill it), then goes.
    @Test("--client-rate-limit: connections from one address share a token bucket; the rest are refused")
    func rateLimitsPerAddress() throws {
        var cluster = try ClusterHarness(count: 3, partitions: 2) { $0.clientCommandsPerSecond = 4 }
        #expect(cluster.run(upTo: 3000) { $0.isFullyReplicated })
        let first = cluster.connect(1, from: "10.0.0.7")
        let second = cluster.connect(1, from: "10.0.0.7")
        let other = cluster.connect(1, from: "10.0.0.8")
        for index in 0..<6 {
            cluster.submit(1, index % 2 == 0 ? first : second, "SET", "k\(index)", "v")
        }
        cluster.submit(1, first, "PING")
        cluster.submit(1, other, "SET", "elsewhere", "v")
        #expect(
            cluster.run(upTo: 1000) {
                ($0.replies[1]?[first]?.count ?? 0) == 4 && ($0.replies[1]?[second]?.count ?? 0) == 3
                    && ($0.replies[1]?[other]?.count ?? 0) == 1
            })
        let replies = (cluster.replies[1]?[first] ?? []).prefix(3) + (cluster.replies[1]?[second] ?? [])
        let refused = replies.filter { $0.hasPrefix("-TRYAGAIN rate limited") }
        #expect(replies.filter { $0 == "+OK\r\n" }.count == 4, "\(replies)")
        #expect(refused.count == 2, "\(replies)")
        for reply in refused {
            #expect(
                reply.hasPrefix(
                    "-TRYAGAIN rate limited: clients from 10.0.0.7 may send 4 commands per second to this node (--client-rate-limit); retry in "
                ), "\(reply)")
        }
        #expect(cluster.replies[1]?[first]?.last == "+PONG\r\n")
        #expect(cluster.replies[1]?[other] == ["+OK\r\n"])
        #expect(
            cluster.members[1].core.renderMetrics(now: cluster.now).contains(
                "cairn_commands_refused_total{reason=\"rate-limited\"} 2"))
        // Refilled after a second (100 turns of 10 ms) at most.
        _ = cluster.run(upTo: 100) { _ in false }
        #expect(cluster.send(1, second, "SET", "later", "v") == "+OK\r\n")
        for client in [first, second, other] { cluster.step(1, .disconnected(client)) }
        // Reconnecting does not refill a bucket: it lives on until it is full again, then goes.
        #expect(cluster.members[1].core.clientBuckets["10.0.0.7"] != nil)
        _ = cluster.run(upTo: 150) { _ in false }
        #expect(cluster.members[1].core.clientBuckets.isEmpty)
    }

    /// Method: every peer message spends 40 ms on the wire, so each write takes about 80 ms to commit,
    /// over a 50 ms `--overload-latency` target, while a client pipelines 10 writes per 10 ms turn to
    /// the node (about 80 wait at any time: a queue, as far as the node can tell). Writes beyond the
    /// allowance are refused at once with a message naming the class, the wait and the flag, counted
    /// by reason; the admitted ones succeed; once messages are fast again nothing is refused. The
    /// same run with the target off refuses nothing.
    @Test("--overload-latency: writes queueing past the target are admitted only at the rate they complete")
    func refusesWhenWritesQueue() throws {
        for target in [50, 0] {
            var cluster = try ClusterHarness(count: 3, partitions: 1) { $0.overloadLatencyMilliseconds = target }
            #expect(cluster.run(upTo: 3000) { $0.isFullyReplicated })
            let client = cluster.connect(0)
            cluster.messageDelayTurns = 4
            for turn in 0..<100 {
                for index in 0..<10 { cluster.submit(0, client, "SET", "k\(turn).\(index)", "v") }
                cluster.turn()
            }
            cluster.messageDelayTurns = 0
            #expect(cluster.run(upTo: 500) { ($0.replies[0]?[client]?.count ?? 0) == 1000 })
            let replies = cluster.replies[0]?[client] ?? []
            let refused = replies.filter { $0.hasPrefix("-TRYAGAIN node overloaded: even the fastest writes waited") }
            #expect(refused.count + replies.filter { $0 == "+OK\r\n" }.count == 1000, "\(Set(replies))")
            let metrics = cluster.members[0].core.renderMetrics(now: cluster.now)
            if target > 0 {
                #expect(refused.count > 100, "\(refused.count) refused")
                #expect(refused.first?.contains("ms here (target 50 ms, --overload-latency)") == true)
                #expect(metrics.contains("cairn_commands_refused_total{reason=\"slow-writes\"} \(refused.count)"))
                #expect(cluster.send(0, client, "SET", "after", "v") == "+OK\r\n")
            } else {
                #expect(refused.isEmpty)
                #expect(!metrics.contains("reason=\"slow-writes\""))
            }
        }
    }
}
