import CairnCore
import Testing

@testable import CairnRaft

@Suite("Raft membership changes (thesis §4) and leadership transfer (thesis §3.10)")
struct RaftMembershipTests {
    /// A three-node cluster with leader 1 and its term's entry committed everywhere.
    static func cluster(size: Int = 3) -> RaftCluster {
        var cluster = RaftCluster(size: size)
        cluster.elect(1)
        cluster.tickAll()
        cluster.deliverAll()
        return cluster
    }

    static func settle(_ cluster: inout RaftCluster, rounds: Int = 5) {
        for _ in 0..<rounds {
            cluster.tickAll()
            cluster.deliverAll()
        }
    }

    @Test("thesis §4.2.1: a learner receives the log but neither votes nor counts for commitment")
    func learnerCatchesUpWithoutCounting() {
        var cluster = Self.cluster()
        cluster.addNode(4)
        cluster.step(1, .changeMembership(.addLearner(4), request: 1))
        Self.settle(&cluster)
        #expect(cluster.cores[4]?.configuration == ConfigurationState(voters: [1, 2, 3], learners: [4]))
        cluster.crash(2)
        cluster.crash(3)
        cluster.step(1, .propose(Array("x".utf8), request: 2))
        Self.settle(&cluster)
        #expect(cluster.cores[4]?.lastIndex == cluster.cores[1]?.lastIndex, "the learner has the entry")
        #expect(cluster.cores[1]?.lastIndex == 3)
        #expect(cluster.cores[1]?.commitIndex == 2, "but the entry at 3 is not committed by leader + learner")
        #expect(cluster.violations.isEmpty, "\(cluster.violations)")
    }

    @Test("thesis §4.1: a promoted learner becomes a voter; a second change waits until the first commits")
    func promoteLearner() {
        var cluster = Self.cluster()
        cluster.addNode(4)
        cluster.step(1, .changeMembership(.addLearner(4), request: 1))
        cluster.step(1, .changeMembership(.promoteLearner(4), request: 2))
        #expect(
            cluster.replies[1]?.last == RaftReply(request: 2, outcome: .rejected(.configurationChangePending(index: 2)))
        )
        Self.settle(&cluster)
        cluster.step(1, .changeMembership(.promoteLearner(4), request: 3))
        Self.settle(&cluster)
        let expected = ConfigurationState(voters: [1, 2, 3, 4])
        for node in cluster.nodes { #expect(cluster.cores[node]?.configuration == expected, "node \(node)") }
        // With four voters, leader + one other is no longer a quorum.
        cluster.crash(3)
        cluster.crash(4)
        cluster.step(1, .propose(Array("y".utf8), request: 4))
        Self.settle(&cluster)
        #expect(cluster.machines[1]?.contains("y") == false)
        #expect(cluster.violations.isEmpty, "\(cluster.violations)")
    }

    @Test("thesis §4.1: a new leader refuses a membership change until it commits an entry of its term")
    func noChangeBeforeTermCommit() throws {
        var core = try Fixture.leader()
        let output = core.step(.changeMembership(.addLearner(4), request: 1))
        #expect(output.replies == [RaftReply(request: 1, outcome: .rejected(.noEntryCommittedInTerm))])
    }

    @Test("thesis §4.1: invalid changes are refused with a reason")
    func invalidChanges() {
        let configuration = ConfigurationState(voters: [1, 2, 3], learners: [4])
        #expect(throws: RaftRejection.invalidMembershipChange("node 5 is not a learner")) {
            try configuration.applying(.promoteLearner(5))
        }
        #expect(throws: RaftRejection.invalidMembershipChange("node 4 is already a member")) {
            try configuration.applying(.addLearner(4))
        }
        #expect(throws: RaftRejection.invalidMembershipChange("a group needs at least one voter")) {
            try ConfigurationState(voters: [1]).applying(.remove(1))
        }
    }

    @Test(
        "thesis §4.3: replacing voters passes through a joint configuration, which needs both majorities, then leaves it"
    )
    func jointConsensus() {
        var cluster = Self.cluster()
        for node in [4, 5] as [NodeID] { cluster.addNode(node) }
        cluster.step(1, .changeMembership(.replaceVoters([1, 4, 5]), request: 1))
        #expect(cluster.cores[1]?.configuration == ConfigurationState(voters: [1, 4, 5], outgoingVoters: [1, 2, 3]))
        #expect(cluster.cores[1]?.configuration.isJoint == true)
        // Only the new half answers: the joint entry cannot commit without a majority of the old voters.
        cluster.partition([[1, 4, 5], [2, 3]])
        Self.settle(&cluster, rounds: 3)
        #expect(cluster.cores[1]?.commitIndex == 1)
        cluster.heal()
        Self.settle(&cluster)
        let final = ConfigurationState(voters: [1, 4, 5])
        #expect(cluster.cores[1]?.configuration == final)
        #expect(cluster.cores[4]?.configuration == final)
        #expect(cluster.cores[1]?.commitIndex == 3, "joint entry at 2 and final entry at 3 committed")
        cluster.crash(2)
        cluster.crash(3)
        cluster.step(1, .propose(Array("z".utf8), request: 2))
        Self.settle(&cluster)
        #expect(cluster.machines[5] == ["z"], "the new voters alone now commit")
        #expect(cluster.violations.isEmpty, "\(cluster.violations)")
    }

    @Test("thesis §4.2.2: a leader removed from the configuration steps down once the removal commits; the rest elect")
    func removedLeaderStepsDown() {
        var cluster = Self.cluster()
        cluster.step(1, .changeMembership(.remove(1), request: 1))
        Self.settle(&cluster, rounds: 2)
        #expect(cluster.cores[1]?.role == .follower)
        Self.settle(&cluster, rounds: 60)
        let leader = cluster.leader
        #expect(leader == 2 || leader == 3)
        #expect(cluster.cores[1]?.role == .follower, "a removed node never campaigns")
        #expect(cluster.violations.isEmpty, "\(cluster.violations)")
    }

    @Test("thesis §4.1: a configuration entry is in force once appended, and undone if the entry is truncated")
    func configurationFollowsTheLog() throws {
        var core = try Fixture.core(2)
        let change = ConfigurationState(voters: [1, 2, 3], learners: [4])
        let entries = [Entry(term: 1, index: 1, kind: .configuration(change))]
        let append = AppendEntries(previousIndex: 0, previousTerm: 0, entries: entries, commit: 0, sequence: 1)
        _ = core.step(.received(Fixture.message(1, .appendEntries(append)), from: 1))
        #expect(core.configuration == change)
        let replacement = [Entry(term: 2, index: 1, kind: .empty)]
        let overwrite = AppendEntries(previousIndex: 0, previousTerm: 0, entries: replacement, commit: 0, sequence: 1)
        _ = core.step(.received(Fixture.message(2, .appendEntries(overwrite)), from: 3))
        #expect(core.configuration == ConfigurationState(voters: [1, 2, 3]))
    }

    @Test("thesis §3.10: a transfer brings the target up to date, sends TimeoutNow, and the target wins at once")
    func leadershipTransfer() {
        var cluster = Self.cluster()
        cluster.partition([[1, 2], [3]])
        cluster.step(1, .propose(Array("q".utf8), request: 1))
        cluster.deliverAll()
        cluster.heal()
        cluster.step(1, .transferLeadership(to: 3, request: 2))
        #expect(cluster.replies[1]?.last == RaftReply(request: 2, outcome: .transferStarted))
        #expect(cluster.cores[1]?.transferTarget == 3)
        cluster.step(1, .propose(Array("refused".utf8), request: 3))
        #expect(cluster.replies[1]?.last == RaftReply(request: 3, outcome: .rejected(.transferInProgress(to: 3))))
        // Node 3 missed the entry; heartbeats notice the lost append and repair it, then TimeoutNow goes.
        for _ in 0..<4 where cluster.leader == 1 {
            cluster.tick(1)
            cluster.deliverAll()
        }
        #expect(cluster.leader == 3)
        #expect(cluster.cores[3]?.term == 2)
        #expect(cluster.transcript.contains("1->3 TimeoutNow term=1"))
        #expect(cluster.violations.isEmpty, "\(cluster.violations)")
    }

    @Test("thesis §3.10: a transfer that cannot finish within an election timeout is aborted and proposals resume")
    func transferAborts() {
        var cluster = Self.cluster()
        cluster.partition([[1, 2], [3]])
        cluster.step(1, .propose(Array("q".utf8), request: 1))
        cluster.step(1, .transferLeadership(to: 3, request: 2))
        for _ in 0..<10 {
            cluster.tick(1)
            cluster.tick(2)
            cluster.deliverAll()
        }
        #expect(cluster.cores[1]?.transferTarget == nil)
        #expect(cluster.leader == 1)
        cluster.step(1, .propose(Array("ok".utf8), request: 3))
        #expect(cluster.replies[1]?.last == RaftReply(request: 3, outcome: .appended(index: 3, term: 1)))
    }

    @Test("thesis §3.10: a transfer to a non-voter or to the leader itself is refused")
    func transferTargetMustBeVoter() {
        var cluster = Self.cluster()
        cluster.step(1, .transferLeadership(to: 1, request: 1))
        cluster.step(1, .transferLeadership(to: 9, request: 2))
        #expect(
            cluster.replies[1] == [
                RaftReply(request: 1, outcome: .rejected(.invalidTransferTarget(1))),
                RaftReply(request: 2, outcome: .rejected(.invalidTransferTarget(9))),
            ])
    }
}

@Suite("Raft learner pacing")
struct RaftLearnerPacingTests {
    /// A 3-node group whose leader (1) paces learners to 1,000 bytes a tick, with `count` entries of
    /// `bytes` bytes committed, then node 4 added as a learner (the conf change delivered).
    static func clusterWithBacklog(count: Int, bytes: Int) -> RaftCluster {
        var cluster = RaftCluster(size: 3) { $0.learnerBytesPerTick = 1000 }
        cluster.elect(1)
        cluster.tickAll()
        cluster.deliverAll()
        for _ in 0..<count { write(&cluster, bytes: bytes) }
        cluster.deliverAll()
        cluster.addNode(4)
        cluster.step(1, .changeMembership(.addLearner(4), request: RequestID(rawValue: 1_000_000)))
        cluster.deliverAll()
        return cluster
    }

    /// Proposes one entry of `bytes` bytes at node 1 (request IDs from the leader's last index).
    static func write(_ cluster: inout RaftCluster, bytes: Int) {
        let request = RequestID(rawValue: (cluster.cores[1]?.lastIndex.rawValue ?? 0) + 1)
        cluster.step(1, .propose(Array(repeating: UInt8(ascii: "v"), count: bytes), request: request))
    }

    static func settle(_ cluster: inout RaftCluster, ticks: Int) {
        for _ in 0..<ticks {
            cluster.tickAll()
            cluster.deliverAll()
        }
    }

    @Test("a leader sends a learner at most learnerBytesPerTick bytes of entries per tick, and it still catches up")
    func learnerCatchUpIsPaced() {
        var cluster = Self.clusterWithBacklog(count: 40, bytes: 200)
        var rounds = 0
        var previous = cluster.cores[4]?.lastIndex ?? 0
        while cluster.cores[4]?.lastIndex != cluster.cores[1]?.lastIndex && rounds < 100 {
            Self.settle(&cluster, ticks: 1)
            rounds += 1
            let last = cluster.cores[4]?.lastIndex ?? 0
            #expect(last.rawValue <= previous.rawValue + 6, "at most about 1000 bytes (four or five entries) a tick")
            previous = last
        }
        #expect(cluster.cores[4]?.lastIndex == cluster.cores[1]?.lastIndex)
        #expect(rounds >= 8, "40 entries of 200 bytes at 1000 bytes a tick take several ticks, took \(rounds)")
        #expect(cluster.violations.isEmpty, "\(cluster.violations)")
    }

    @Test("an entry larger than a tick's allowance goes alone, and the next ticks pay for it before the next")
    func largeEntriesArePaidOff() {
        var cluster = Self.clusterWithBacklog(count: 12, bytes: 2500)
        let start = cluster.cores[4]?.lastIndex ?? 0
        Self.settle(&cluster, ticks: 10)
        let gained = (cluster.cores[4]?.lastIndex.rawValue ?? 0) - start.rawValue
        // 10 ticks pay for 10,000 bytes: at most four 2,500-byte entries and the one sent on credit.
        #expect(gained >= 2 && gained <= 5, "the learner took \(gained) entries of 2,500 bytes in 10 ticks")
        for _ in 0..<4 { Self.write(&cluster, bytes: 2500) }
        cluster.deliverAll()
        #expect(cluster.cores[2]?.lastIndex == cluster.cores[1]?.lastIndex, "voters are not held back")
        #expect(cluster.cores[4]!.lastIndex < cluster.cores[1]!.lastIndex, "while the learner still is")
        Self.settle(&cluster, ticks: 40)
        #expect(cluster.cores[4]?.lastIndex == cluster.cores[1]?.lastIndex)
        #expect(cluster.violations.isEmpty, "\(cluster.violations)")
    }

    @Test("only the backlog is paced: a learner of a group taking writes faster than its allowance catches up")
    func learnerCatchesUpUnderLoad() {
        var cluster = Self.clusterWithBacklog(count: 12, bytes: 2500)
        // 5,000 bytes a tick of new writes against an allowance of 1,000: pacing everything would leave
        // the learner further behind every tick.
        for _ in 0..<60 {
            Self.write(&cluster, bytes: 2500)
            Self.write(&cluster, bytes: 2500)
            Self.settle(&cluster, ticks: 1)
        }
        #expect(
            cluster.cores[4]?.lastIndex == cluster.cores[1]?.lastIndex, "the learner keeps up once its backlog is in")
        #expect(cluster.violations.isEmpty, "\(cluster.violations)")
    }
}
