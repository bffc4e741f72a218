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
}
