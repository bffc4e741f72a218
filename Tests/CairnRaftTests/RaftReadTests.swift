import CairnCore
import Testing

@testable import CairnRaft

@Suite("Raft linearizable reads (thesis §6.4)")
struct RaftReadTests {
    /// A leader that committed its empty entry, with followers 2 and 3 in replicate state.
    static func committedLeader(_ configure: (inout RaftConfig) -> Void = { _ in }) throws -> RaftCore {
        var core = try Fixture.leader(configure)
        _ = core.step(.persisted(through: 1, term: 1))
        _ = core.step(.received(Fixture.appendSuccess(1, match: 1), from: 2))
        _ = core.step(.received(Fixture.appendSuccess(1, match: 1), from: 3))
        #expect(core.commitIndex == 1)
        return core
    }

    /// The sequence numbers of the heartbeats in `output`.
    static func sequences(_ output: RaftOutput, to node: NodeID) -> [UInt64] {
        output.appends.filter { $0.to == node }.map(\.append.sequence)
    }

    @Test("thesis §6.4: ReadIndex answers only after a quorum acknowledges a heartbeat sent after the read arrived")
    func readWaitsForQuorumRound() throws {
        var core = try Self.committedLeader()
        let output = core.step(.readIndex(request: 5))
        #expect(output.reads.isEmpty)
        let sequence = try #require(Self.sequences(output, to: 2).first)
        // An acknowledgement of an older append does not confirm leadership for this read.
        let stale = core.step(.received(Fixture.appendSuccess(1, match: 1, sequence: sequence - 1), from: 2))
        #expect(stale.reads.isEmpty)
        let confirmed = core.step(.received(Fixture.appendSuccess(1, match: 1, sequence: sequence), from: 2))
        #expect(confirmed.reads == [ReadResult(request: 5, index: 1)])
    }

    @Test("thesis §6.4: a new leader serves no read until it has committed an entry of its own term")
    func readWaitsForTermCommit() throws {
        var core = try Fixture.leader()
        let early = core.step(.readIndex(request: 1))
        #expect(early.reads.isEmpty)
        #expect(early.messages.isEmpty, "no round until the term's first entry commits")
        _ = core.step(.persisted(through: 1, term: 1))
        let commit = core.step(.received(Fixture.appendSuccess(1, match: 1, sequence: 0), from: 2))
        #expect(core.commitIndex == 1)
        let sequence = try #require(Self.sequences(commit, to: 3).last)
        let output = core.step(.received(Fixture.appendSuccess(1, match: 1, sequence: sequence), from: 3))
        #expect(output.reads == [ReadResult(request: 1, index: 1)])
    }

    @Test("thesis §6.4: reads arriving while a round is out share the next round (batching)")
    func readsBatch() throws {
        var core = try Self.committedLeader()
        let first = core.step(.readIndex(request: 1))
        #expect(!first.messages.isEmpty)
        for request in 2...5 as ClosedRange<UInt64> {
            let output = core.step(.readIndex(request: RequestID(rawValue: request)))
            #expect(output.messages.isEmpty, "one round at a time")
        }
        let roundOne = try #require(Self.sequences(first, to: 2).first)
        let answered = core.step(.received(Fixture.appendSuccess(1, match: 1, sequence: roundOne), from: 2))
        #expect(answered.reads.map(\.request) == [1])
        let roundTwo = try #require(Self.sequences(answered, to: 3).first, "the waiting reads start the next round")
        let rest = core.step(.received(Fixture.appendSuccess(1, match: 1, sequence: roundTwo), from: 3))
        #expect(rest.reads.map(\.request) == [2, 3, 4, 5])
    }

    @Test("thesis §6.4: only a sole voter that committed an entry of its term may skip the confirmation round")
    func immediateReadIndex() throws {
        var alone = try Fixture.leader(voters: [1])
        #expect(alone.role == .leader)
        #expect(alone.immediateReadIndex == nil, "no entry of its term is committed yet")
        _ = alone.step(.persisted(through: 1, term: 1))
        #expect(alone.commitIndex == 1)
        #expect(alone.immediateReadIndex == 1)
        // What readIndex releases at once in that state: the same index.
        #expect(alone.step(.readIndex(request: 7)).reads == [ReadResult(request: 7, index: 1)])
        // With other voters, every read needs a quorum round (leases are off).
        let three = try Self.committedLeader()
        #expect(three.immediateReadIndex == nil)
        // A follower never skips it.
        #expect(try Fixture.core(2, voters: [2]).immediateReadIndex == nil)
    }

    @Test("thesis §6.4: a follower refuses reads with a leader hint; a deposed leader drops its pending reads")
    func readsOffLeader() throws {
        var follower = try Fixture.core(2)
        let output = follower.step(.readIndex(request: 3))
        #expect(output.replies == [RaftReply(request: 3, outcome: .notLeader(leaderHint: nil))])
        var core = try Self.committedLeader()
        _ = core.step(.readIndex(request: 4))
        let deposed = core.step(.received(Fixture.vote(9, lastIndex: 5, lastTerm: 5), from: 2))
        #expect(core.role == .leader, "stickiness: a leader ignores a vote request while its lease holds")
        #expect(deposed.replies.isEmpty)
        let stepDown = core.step(.received(Fixture.appendSuccess(9, match: 0), from: 3))
        #expect(core.role == .follower)
        #expect(stepDown.replies == [RaftReply(request: 4, outcome: .rejected(.leadershipLost))])
    }

    @Test("thesis §6.4: a leader cut off from its quorum cannot confirm reads (no stale reads)")
    func partitionedLeaderServesNoReads() {
        var cluster = RaftCluster(size: 3)
        cluster.elect(1)
        cluster.tickAll()
        cluster.deliverAll()
        cluster.partition([[1], [2, 3]])
        cluster.step(1, .readIndex(request: 77))
        for _ in 0..<30 {
            cluster.tickAll()
            cluster.deliverAll()
        }
        #expect(cluster.reads[1] == nil)
        #expect(cluster.replies[1] == [RaftReply(request: 77, outcome: .rejected(.leadershipLost))])
        #expect(cluster.leader != 1)
    }

    @Test("thesis §6.4.1: with leases a leader answers reads at once while a recent quorum round holds")
    func leaseReads() throws {
        var core = try Self.committedLeader {
            $0.leaseReads = true
            $0.leaseClockDriftTicks = 2
        }
        // The acknowledgements above were for sequence 0 (no heartbeat yet): no lease.
        let noLease = core.step(.readIndex(request: 1))
        #expect(noLease.reads.isEmpty)
        let sequence = try #require(Self.sequences(noLease, to: 2).first)
        let round = core.step(.received(Fixture.appendSuccess(1, match: 1, sequence: sequence), from: 2))
        #expect(round.reads == [ReadResult(request: 1, index: 1)])
        let leased = core.step(.readIndex(request: 2))
        #expect(leased.reads == [ReadResult(request: 2, index: 1)])
        #expect(leased.messages.isEmpty, "a lease read needs no round")
        // electionTicksMin 10 − drift 2 − 1 for rounding: the lease lasts 7 ticks from the send.
        for _ in 0..<7 { _ = core.step(.tick) }
        let expired = core.step(.readIndex(request: 3))
        #expect(expired.reads.isEmpty)
    }
}
