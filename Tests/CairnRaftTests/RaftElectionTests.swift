import CairnCore
import Testing

@testable import CairnRaft

@Suite("Raft elections (§5.2, thesis §9.6, §6.2)")
struct RaftElectionTests {
    @Test("§5.2: a follower that hears nothing for its election timeout starts an election, durably voting for itself")
    func followerCampaignsAfterTimeout() throws {
        var core = try Fixture.core { $0.preVote = false }
        let outputs = Fixture.tickUntilRoleChanges(&core)
        let last = try #require(outputs.last)
        #expect(core.role == .candidate)
        #expect(core.term == 1)
        #expect(core.vote == 1)
        #expect(last.writes.hardState == HardState(term: 1, vote: 1, commit: 0))
        #expect(last.messages.map(\.to) == [2, 3])
        #expect(last.messages.allSatisfy { $0.message == Fixture.vote(1) })
    }

    @Test(
        "§5.2: election timeouts are drawn from [electionTicksMin, 2×electionTicksMin) by the seeded generator",
        arguments: 0..<50 as Range<UInt64>)
    func electionTimeoutIsRandomizedInRange(seed: UInt64) throws {
        func ticksToCampaign() throws -> Int {
            var core = try RaftCore(
                config: RaftConfig(id: 1, electionTicksMin: 10, seed: seed),
                storage: MemoryRaftLog(bootstrap: ConfigurationState(voters: [1, 2, 3])))
            return Fixture.tickUntilRoleChanges(&core).count
        }
        let ticks = try ticksToCampaign()
        #expect((10..<20).contains(ticks), "seed \(seed)")
        #expect(try ticksToCampaign() == ticks, "same seed, same timeout; seed \(seed)")
    }

    @Test("§5.2, §5.4.2: a candidate with votes from a majority becomes leader and appends an empty entry")
    func candidateWinsWithMajority() throws {
        var core = try Fixture.core { $0.preVote = false }
        _ = Fixture.tickUntilRoleChanges(&core)
        let output = core.step(.received(Fixture.granted(1), from: 2))
        #expect(core.role == .leader)
        #expect(core.leader == 1)
        #expect(output.writes.entries == [Entry(term: 1, index: 1, kind: .empty)])
        #expect(output.appends.map(\.to) == [2, 3])
        #expect(output.appends.allSatisfy { $0.append.entries == [Entry(term: 1, index: 1, kind: .empty)] })
    }

    @Test("§5.2: a node grants at most one vote per term, and repeats the same answer to a repeated request")
    func oneVotePerTerm() throws {
        var core = try Fixture.core()
        let first = core.step(.received(Fixture.vote(1), from: 2))
        #expect(first.messages.map(\.message) == [Fixture.granted(1)])
        #expect(first.writes.hardState?.vote == 2)
        let second = core.step(.received(Fixture.vote(1), from: 3))
        #expect(
            second.messages.map(\.message) == [
                Fixture.message(1, .requestVoteResponse(granted: false, isPreVote: false))
            ])
        let again = core.step(.received(Fixture.vote(1), from: 2))
        #expect(again.messages.map(\.message) == [Fixture.granted(1)])
        #expect(core.vote == 2)
    }

    @Test(
        "§5.4.1: a voter denies its vote to a candidate whose log is less up-to-date",
        arguments: [
            (lastIndex: 3 as UInt64, lastTerm: 1 as UInt64, granted: false),  // older last term
            (lastIndex: 1, lastTerm: 2, granted: false),  // same last term, shorter
            (lastIndex: 2, lastTerm: 2, granted: true),  // same last term, same length
            (lastIndex: 1, lastTerm: 3, granted: true),  // later last term wins even if shorter
        ])
    func logUpToDateCheck(lastIndex: UInt64, lastTerm: UInt64, granted: Bool) throws {
        var core = try Fixture.core(terms: [1, 2])
        let output = core.step(.received(Fixture.vote(5, lastIndex: lastIndex, lastTerm: lastTerm), from: 2))
        #expect(
            output.messages.map(\.message) == [
                Fixture.message(5, .requestVoteResponse(granted: granted, isPreVote: false))
            ])
        #expect(core.term == 5, "a higher term is adopted either way (§5.1)")
    }

    @Test("§5.1: a leader that sees a higher term steps down to follower and forgets its vote")
    func higherTermDeposesLeader() throws {
        var core = try Fixture.leader()
        #expect(core.role == .leader)
        let output = core.step(
            .received(
                Fixture.message(
                    7, .appendEntriesResponse(AppendEntriesResponse(success: false, matchIndex: 0, sequence: 0))),
                from: 3))
        #expect(core.role == .follower)
        #expect(core.term == 7)
        #expect(core.vote == nil)
        #expect(output.writes.hardState == HardState(term: 7, vote: nil, commit: 0))
    }

    @Test("§5.2: a candidate rejected by a majority returns to follower")
    func candidateLosesElection() throws {
        var core = try Fixture.core { $0.preVote = false }
        _ = Fixture.tickUntilRoleChanges(&core)
        _ = core.step(.received(Fixture.message(1, .requestVoteResponse(granted: false, isPreVote: false)), from: 2))
        #expect(core.role == .candidate)
        _ = core.step(.received(Fixture.message(1, .requestVoteResponse(granted: false, isPreVote: false)), from: 3))
        #expect(core.role == .follower)
        #expect(core.term == 1)
    }

    @Test("thesis §9.6: a pre-candidate asks for votes in its next term without changing its own term or vote")
    func preVoteKeepsTerm() throws {
        var core = try Fixture.core()
        let outputs = Fixture.tickUntilRoleChanges(&core)
        let last = try #require(outputs.last)
        #expect(core.role == .preCandidate)
        #expect(core.term == 0)
        #expect(core.vote == nil)
        #expect(last.writes.hardState == nil, "a pre-vote promises nothing durable")
        #expect(last.messages.map(\.message) == [Fixture.vote(1, preVote: true), Fixture.vote(1, preVote: true)])
        // A granted pre-vote carries the future term; it must not be adopted.
        _ = core.step(.received(Fixture.granted(1, preVote: true), from: 2))
        #expect(core.role == .candidate)
        #expect(core.term == 1)
    }

    @Test("thesis §9.6: a voter grants a pre-vote without changing its term or vote")
    func preVoteGrantChangesNothing() throws {
        var core = try Fixture.core(2)
        let output = core.step(.received(Fixture.vote(1, preVote: true), from: 1))
        #expect(output.messages.map(\.message) == [Fixture.granted(1, preVote: true)])
        #expect(core.term == 0)
        #expect(core.vote == nil)
        #expect(output.writes.isEmpty)
    }

    @Test("thesis §4.2.3: a follower that heard from its leader within electionTicksMin ignores vote requests")
    func leaderStickiness() throws {
        var core = try Fixture.core(2)
        let heartbeat = AppendEntries(previousIndex: 0, previousTerm: 0, entries: [], commit: 0, sequence: 1)
        _ = core.step(.received(Fixture.message(1, .appendEntries(heartbeat)), from: 1))
        let ignored = core.step(.received(Fixture.vote(2, lastIndex: 5, lastTerm: 1), from: 3))
        #expect(ignored.messages.isEmpty)
        #expect(core.term == 1)
        #expect(core.counters.ignoredVoteRequests == 1)
        for _ in 0..<10 { _ = core.step(.tick) }
        #expect(core.role != .leader)
        let answered = core.step(.received(Fixture.vote(9, lastIndex: 5, lastTerm: 1), from: 3))
        #expect(core.term == 9, "after electionTicksMin without the leader, vote requests count again")
        #expect(answered.messages.count == 1)
    }

    @Test("thesis §6.2: CheckQuorum: a leader that hears from no quorum for an election timeout steps down")
    func checkQuorumStepsDown() throws {
        var core = try Fixture.leader()
        for _ in 0..<9 { _ = core.step(.tick) }
        #expect(core.role == .leader)
        _ = core.step(.tick)
        #expect(core.role == .follower)
        #expect(core.leader == nil)
    }

    @Test("thesis §6.2: a leader that hears from a quorum keeps leading")
    func checkQuorumKeepsLeader() throws {
        var core = try Fixture.leader()
        for round in 0..<5 {
            for _ in 0..<5 { _ = core.step(.tick) }
            _ = core.step(.received(Fixture.appendSuccess(1, match: 1), from: 2))
            #expect(core.role == .leader, "round \(round)")
        }
    }

    @Test("§5.2: a cluster elects exactly one leader and heartbeats keep it in place")
    func clusterElectsOneLeader() {
        var cluster = RaftCluster(size: 5)
        for _ in 0..<60 {
            cluster.tickAll()
            cluster.deliverAll()
        }
        #expect(cluster.violations.isEmpty, "\(cluster.violations)")
        let leaders = cluster.nodes.filter { cluster.cores[$0]?.role == .leader }
        #expect(leaders.count == 1)
        let term = cluster.cores[leaders[0]]?.term
        for _ in 0..<100 {
            cluster.tickAll()
            cluster.deliverAll()
        }
        #expect(cluster.leader == leaders.first)
        #expect(cluster.cores[leaders[0]]?.term == term, "no elections while the leader is healthy")
    }

    @Test("thesis §9.6: with PreVote and CheckQuorum a partitioned node that rejoins cannot depose a healthy leader")
    func rejoiningNodeCannotDisrupt() {
        var cluster = RaftCluster(size: 3)
        cluster.elect(1)
        #expect(cluster.leader == 1)
        cluster.partition([[1, 2], [3]])
        for _ in 0..<100 {
            cluster.tickAll()
            cluster.deliverAll()
        }
        #expect(cluster.cores[3]?.term == 1, "PreVote: an isolated node does not raise its term")
        cluster.heal()
        for _ in 0..<50 {
            cluster.tickAll()
            cluster.deliverAll()
        }
        #expect(cluster.leader == 1)
        #expect(cluster.cores[1]?.term == 1)
        #expect(cluster.cores[3]?.leader == 1)
        #expect(cluster.violations.isEmpty, "\(cluster.violations)")
    }

    @Test("thesis §4.2.3: without PreVote an isolated node raises its term, and the group moves past it on rejoin")
    func withoutPreVoteTermInflationRecovers() {
        var cluster = RaftCluster(size: 3) { $0.preVote = false }
        cluster.elect(1)
        cluster.partition([[1, 2], [3]])
        for _ in 0..<60 {
            cluster.tickAll()
            cluster.deliverAll()
        }
        #expect((cluster.cores[3]?.term ?? 0) > 1)
        cluster.heal()
        for _ in 0..<100 {
            cluster.tickAll()
            cluster.deliverAll()
        }
        #expect(cluster.leader != nil)
        let terms = Set(cluster.nodes.compactMap { cluster.cores[$0]?.term })
        #expect(terms.count == 1, "all nodes agree on the term after healing")
        #expect(cluster.violations.isEmpty, "\(cluster.violations)")
    }

    @Test("§5.2: a non-voter (learner) never starts an election")
    func learnerNeverCampaigns() throws {
        var core = try RaftCore(
            config: Fixture.config(4),
            storage: MemoryRaftLog(bootstrap: ConfigurationState(voters: [1, 2, 3], learners: [4])))
        for _ in 0..<100 { _ = core.step(.tick) }
        #expect(core.role == .follower)
        #expect(core.counters.campaigns == 0)
    }

    @Test("§5.2: a single-voter group elects itself at once")
    func singleNodeElectsItself() throws {
        var core = try Fixture.core(1, voters: [1])
        _ = Fixture.tickUntilRoleChanges(&core)
        #expect(core.role == .leader)
        #expect(core.term == 1)
    }
}
